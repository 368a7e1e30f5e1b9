export * from './alert.js';
export * from './flow-record.js';
export * from './report.js';
export * from './verdict.js';

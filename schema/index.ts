export * from './alert.js';
export * from './flow-record.js';
export * from './verdict.js';

/**
 * Alerts on denied traffic (docs/alerts.md): the engine decides (engine.ts), the stage writes the
 * outbox in the store's transaction (stage.ts), the dispatcher delivers (dispatcher.ts) through
 * receivers (receivers/: one module per kind).
 */
export { type AlertsConfig, loadAlertsConfig, parseAlertsConfig, routeAlert } from './config.js';
export { AlertDispatcher, type DispatchStats, dispatchUntil, Wakeup } from './dispatcher.js';
export { AlertEngine, type AlertEvent, type AlertState, DEFAULT_ENGINE_OPTIONS } from './engine.js';
export { toPayload } from './payload.js';
export { type AlertReceiver, makeReceivers } from './receivers/index.js';
export { AlertStage } from './stage.js';

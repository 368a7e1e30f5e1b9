import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AuditError } from '../lib/errors.js';
import { parseDuration } from '../lib/format.js';
import type { AlertKindName, AlertSeverityName } from '../schema/alert.js';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine.js';

/**
 * The alerts configuration (`--alerts FILE`, docs/alerts.md): receivers, routes and the engine's
 * timing. Every problem names the file, the key and what was expected (ALERTS_CONFIG_INVALID).
 * Secrets come from a file or an environment variable and are held in a Secret, which prints as
 * `[secret]`: they never reach a log line or an error message.
 */

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
}

export type ReceiverType = 'alertmanager' | 'webhook' | 'slack';

export interface ReceiverConfig {
  name: string;
  type: ReceiverType;
  /** Alertmanager: every URL gets every alert (an HA cluster); others: one URL. */
  urls: Secret[];
  /** Webhook: the HMAC-SHA256 key. */
  secret?: Secret;
  timeoutMs: number;
}

export interface RouteMatch {
  kind?: AlertKindName[];
  /** Source or destination namespace. */
  namespace?: string[];
  /** Labels the source or destination namespace carries (all of them; values compared exactly). */
  namespaceLabels?: Record<string, string>;
  /** Source or destination workload (`namespace/name`). */
  workload?: string[];
  port?: number[];
}

export interface RouteConfig {
  match: RouteMatch;
  receivers: string[];
  severity?: AlertSeverityName;
  continue: boolean;
}

export interface AlertsConfig {
  file: string;
  externalUrl?: string;
  engine: EngineOptions;
  receivers: ReceiverConfig[];
  routes: RouteConfig[];
}

const KINDS: readonly AlertKindName[] = ['violation', 'denied-attempt', 'scan', 'report'];
const SEVERITIES: readonly AlertSeverityName[] = ['critical', 'warning', 'info'];
const TYPES: readonly ReceiverType[] = ['alertmanager', 'webhook', 'slack'];

type Json = Record<string, unknown>;

class Reader {
  constructor(
    readonly file: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  fail(key: string, expected: string): never {
    throw new AuditError('ALERTS_CONFIG_INVALID', `${key}: ${expected}`, { source: this.file });
  }

  object(v: unknown, key: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'expected a mapping');
    return v as Json;
  }

  only(o: Json, key: string, allowed: string[]): void {
    for (const k of Object.keys(o))
      if (!allowed.includes(k))
        this.fail(key ? `${key}.${k}` : k, `unknown key (known: ${allowed.join(', ')})`);
  }

  string(v: unknown, key: string): string {
    if (typeof v !== 'string' || v === '') this.fail(key, 'expected a non-empty string');
    return v;
  }

  duration(v: unknown, key: string, fallback: number): number {
    if (v === undefined) return fallback;
    try {
      return parseDuration(this.string(v, key));
    } catch {
      return this.fail(key, `expected a duration such as 90s, 15m, 4h, got ${JSON.stringify(v)}`);
    }
  }

  bool(v: unknown, key: string, fallback: boolean): boolean {
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'expected true or false');
    return v;
  }

  list<T>(v: unknown, key: string, each: (x: unknown, key: string) => T): T[] | undefined {
    if (v === undefined) return undefined;
    const arr = Array.isArray(v) ? v : [v];
    return arr.map((x, i) => each(x, `${key}[${i}]`));
  }

  oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[]): T {
    if (!allowed.includes(v as T))
      this.fail(key, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  /** A value given inline, or `{file: PATH}`, or `{env: NAME}`. */
  secret(v: unknown, key: string): Secret {
    if (typeof v === 'string' && v !== '') return new Secret(v);
    const o = this.object(v, key);
    this.only(o, key, ['file', 'env']);
    if (o.file !== undefined) {
      const path = this.string(o.file, `${key}.file`);
      try {
        const text = readFileSync(path, 'utf8').trim();
        if (text === '') this.fail(`${key}.file`, `${path} is empty`);
        return new Secret(text);
      } catch (err) {
        if (err instanceof AuditError) throw err;
        return this.fail(
          `${key}.file`,
          `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    }
    if (o.env !== undefined) {
      const name = this.string(o.env, `${key}.env`);
      const value = this.env[name];
      if (!value) this.fail(`${key}.env`, `environment variable ${name} is not set`);
      return new Secret(value);
    }
    return this.fail(key, 'expected a string, {file: PATH} or {env: NAME}');
  }
}

function receiver(r: Reader, v: unknown, key: string): ReceiverConfig {
  const o = r.object(v, key);
  r.only(o, key, ['name', 'type', 'url', 'urls', 'secret', 'timeout']);
  const type = r.oneOf(o.type, `${key}.type`, TYPES);
  const urls =
    type === 'alertmanager'
      ? (r.list(o.urls ?? o.url, `${key}.urls`, (x, k) => r.secret(x, k)) ??
        r.fail(`${key}.urls`, 'required'))
      : [o.url === undefined ? r.fail(`${key}.url`, 'required') : r.secret(o.url, `${key}.url`)];
  const out: ReceiverConfig = {
    name: r.string(o.name, `${key}.name`),
    type,
    urls,
    timeoutMs: r.duration(o.timeout, `${key}.timeout`, 10_000),
  };
  for (const [i, u] of urls.entries())
    if (!/^https?:\/\/[^/\s]+/.test(u.reveal()))
      r.fail(`${key}.url${urls.length > 1 ? `s[${i}]` : ''}`, 'expected an http:// or https:// URL');
  if (type === 'webhook') {
    if (o.secret === undefined) r.fail(`${key}.secret`, 'required: webhooks are signed (HMAC-SHA256)');
    out.secret = r.secret(o.secret, `${key}.secret`);
  } else if (o.secret !== undefined) r.fail(`${key}.secret`, `only webhook receivers take a secret`);
  return out;
}

function route(r: Reader, v: unknown, key: string, names: Set<string>): RouteConfig {
  const o = r.object(v, key);
  r.only(o, key, ['match', 'receivers', 'receiver', 'severity', 'continue']);
  const m = o.match === undefined ? {} : r.object(o.match, `${key}.match`);
  r.only(m, `${key}.match`, ['kind', 'namespace', 'namespaceLabels', 'workload', 'port']);
  const match: RouteMatch = {};
  const kind = r.list(m.kind, `${key}.match.kind`, (x, k) => r.oneOf(x, k, KINDS));
  if (kind) match.kind = kind;
  const ns = r.list(m.namespace, `${key}.match.namespace`, (x, k) => r.string(x, k));
  if (ns) match.namespace = ns;
  if (m.namespaceLabels !== undefined) {
    const o2 = r.object(m.namespaceLabels, `${key}.match.namespaceLabels`);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(o2))
      labels[k] = r.string(String(v), `${key}.match.namespaceLabels.${k}`);
    match.namespaceLabels = labels;
  }
  const wl = r.list(m.workload, `${key}.match.workload`, (x, k) => r.string(x, k));
  if (wl) match.workload = wl;
  const port = r.list(m.port, `${key}.match.port`, (x, k) =>
    Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 65535
      ? (x as number)
      : r.fail(k, 'expected a port number 0-65535'),
  );
  if (port) match.port = port;
  const receivers =
    r.list(o.receivers ?? o.receiver, `${key}.receivers`, (x, k) => {
      const n = r.string(x, k);
      if (!names.has(n))
        r.fail(k, `no receiver is named ${JSON.stringify(n)} (receivers: ${[...names].join(', ')})`);
      return n;
    }) ?? r.fail(`${key}.receivers`, 'required');
  const out: RouteConfig = { match, receivers, continue: r.bool(o.continue, `${key}.continue`, false) };
  if (o.severity !== undefined) out.severity = r.oneOf(o.severity, `${key}.severity`, SEVERITIES);
  return out;
}

export function parseAlertsConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): AlertsConfig {
  const r = new Reader(file, env);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const e = err as { linePos?: { line: number }[]; message: string };
    throw new AuditError('ALERTS_CONFIG_INVALID', `not YAML: ${e.message.split('\n')[0]}`, {
      source: file,
      ...(e.linePos?.[0] ? { line: e.linePos[0].line } : {}),
    });
  }
  const o = r.object(doc ?? {}, '(top level)');
  r.only(o, '', ['externalUrl', 'defaults', 'receivers', 'routes']);
  const d = o.defaults === undefined ? {} : r.object(o.defaults, 'defaults');
  r.only(d, 'defaults', ['repeatInterval', 'resolveTimeout', 'deniedAttempts', 'scan', 'severity']);
  const scan = d.scan === undefined ? {} : r.object(d.scan, 'defaults.scan');
  r.only(scan, 'defaults.scan', ['enabled', 'window', 'targets']);
  const sev = d.severity === undefined ? {} : r.object(d.severity, 'defaults.severity');
  r.only(sev, 'defaults.severity', [...KINDS]);
  const targets = scan.targets ?? DEFAULT_ENGINE_OPTIONS.scan.targets;
  if (!Number.isInteger(targets) || (targets as number) < 2)
    r.fail('defaults.scan.targets', 'expected an integer of 2 or more');
  const severity = { ...DEFAULT_ENGINE_OPTIONS.severity };
  for (const k of KINDS)
    if (sev[k] !== undefined) severity[k] = r.oneOf(sev[k], `defaults.severity.${k}`, SEVERITIES);
  const engine: EngineOptions = {
    repeatMs: r.duration(d.repeatInterval, 'defaults.repeatInterval', DEFAULT_ENGINE_OPTIONS.repeatMs),
    resolveMs: r.duration(d.resolveTimeout, 'defaults.resolveTimeout', DEFAULT_ENGINE_OPTIONS.resolveMs),
    deniedAttempts: r.bool(
      d.deniedAttempts,
      'defaults.deniedAttempts',
      DEFAULT_ENGINE_OPTIONS.deniedAttempts,
    ),
    scan: {
      enabled: r.bool(scan.enabled, 'defaults.scan.enabled', DEFAULT_ENGINE_OPTIONS.scan.enabled),
      windowMs: r.duration(scan.window, 'defaults.scan.window', DEFAULT_ENGINE_OPTIONS.scan.windowMs),
      targets: targets as number,
    },
    severity,
  };
  const receivers = r.list(o.receivers, 'receivers', (x, k) => receiver(r, x, k)) ?? [];
  if (receivers.length === 0) r.fail('receivers', 'expected at least one receiver');
  const names = new Set<string>();
  for (const [i, rc] of receivers.entries()) {
    if (names.has(rc.name)) r.fail(`receivers[${i}].name`, `${JSON.stringify(rc.name)} is used twice`);
    names.add(rc.name);
  }
  const routes = r.list(o.routes, 'routes', (x, k) => route(r, x, k, names)) ?? [];
  const out: AlertsConfig = { file, engine, receivers, routes };
  if (o.externalUrl !== undefined) out.externalUrl = r.string(o.externalUrl, 'externalUrl');
  return out;
}

export function loadAlertsConfig(file: string, env: NodeJS.ProcessEnv = process.env): AlertsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AuditError(
      'ALERTS_CONFIG_INVALID',
      `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        source: file,
      },
    );
  }
  return parseAlertsConfig(text, file, env);
}

function namespaceOf(workload: string | undefined): string | undefined {
  if (!workload) return undefined;
  const i = workload.indexOf('/');
  return i > 0 ? workload.slice(0, i) : undefined;
}

/**
 * The receivers (and severity) an alert goes to: routes in order, the first match wins unless it
 * says `continue`; with no routes, every receiver gets every alert.
 */
export function routeAlert(
  config: AlertsConfig,
  a: { kind: AlertKindName; src: string; dst?: string; port?: number },
  namespaceLabels: (namespace: string) => Record<string, string> | undefined = () => undefined,
): { receiver: string; severity: AlertSeverityName }[] {
  const fallback = config.engine.severity[a.kind];
  if (config.routes.length === 0)
    return config.receivers.map((r) => ({ receiver: r.name, severity: fallback }));
  const out: { receiver: string; severity: AlertSeverityName }[] = [];
  for (const route of config.routes) {
    const m = route.match;
    const nss = [namespaceOf(a.src), namespaceOf(a.dst)];
    const ok =
      (!m.kind || m.kind.includes(a.kind)) &&
      (!m.namespace || nss.some((n) => n !== undefined && m.namespace!.includes(n))) &&
      (!m.namespaceLabels ||
        nss.some((n) => {
          const labels = n === undefined ? undefined : namespaceLabels(n);
          return (
            labels !== undefined && Object.entries(m.namespaceLabels!).every(([k, v]) => labels[k] === v)
          );
        })) &&
      (!m.workload || [a.src, a.dst].some((w) => w !== undefined && m.workload!.includes(w))) &&
      (!m.port || (a.port !== undefined && m.port.includes(a.port)));
    if (!ok) continue;
    for (const r of route.receivers)
      if (!out.some((x) => x.receiver === r)) out.push({ receiver: r, severity: route.severity ?? fallback });
    if (!route.continue) break;
  }
  return out;
}

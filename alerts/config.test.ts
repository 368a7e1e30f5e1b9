import { describe, expect, it } from 'vitest';
import { AuditError } from '../lib/errors.js';
import { parseAlertsConfig, routeAlert } from './config.js';

const CONFIG = `
receivers:
  - {name: oncall, type: alertmanager, urls: ["http://am-0:9093", "http://am-1:9093"]}
  - {name: shop-team, type: slack, url: "https://hooks.example/T/B/x"}
  - {name: siem, type: webhook, url: "https://siem.example/hook", secret: {env: SIEM_SECRET}}
routes:
  - match: {namespaceLabels: {team: shop}}
    receivers: [shop-team]
    continue: true
  - match: {port: [5432]}
    receivers: [oncall]
    severity: critical
  - receivers: [siem]
`;
const env = { SIEM_SECRET: 'k' };
const labels: Record<string, Record<string, string>> = { shop: { team: 'shop' }, dev: { team: 'dev' } };
const nsLabels = (ns: string) => labels[ns];

describe('alert routing', () => {
  const config = parseAlertsConfig(CONFIG, 'alerts.yaml', env);

  it('matches namespace labels of the source or destination, and continues when told', () => {
    const to = (a: Parameters<typeof routeAlert>[1]) =>
      routeAlert(config, a, nsLabels).map((r) => r.receiver);
    expect(to({ kind: 'violation', src: 'dev/debug', dst: 'shop/cart', port: 8080 })).toEqual([
      'shop-team',
      'siem',
    ]);
    expect(to({ kind: 'violation', src: 'dev/debug', dst: 'shop/db', port: 5432 })).toEqual([
      'shop-team',
      'oncall',
    ]);
    expect(to({ kind: 'violation', src: 'dev/debug', dst: 'dev/x', port: 80 })).toEqual(['siem']);
    // Without the cluster's labels, a label route cannot match.
    expect(
      routeAlert(config, { kind: 'violation', src: 'dev/a', dst: 'shop/b', port: 1 }).map((r) => r.receiver),
    ).toEqual(['siem']);
  });

  it('takes the severity of the route, else the default for the kind', () => {
    const r = routeAlert(
      config,
      { kind: 'denied-attempt', src: 'dev/a', dst: 'dev/db', port: 5432 },
      nsLabels,
    );
    expect(r).toEqual([{ receiver: 'oncall', severity: 'critical' }]);
    expect(routeAlert(config, { kind: 'scan', src: 'dev/a' }, nsLabels)).toEqual([
      { receiver: 'siem', severity: 'warning' },
    ]);
  });

  it('keeps secrets out of every printed form', () => {
    const siem = config.receivers.find((r) => r.name === 'siem')!;
    expect(siem.secret!.reveal()).toBe('k');
    expect(JSON.stringify(config)).not.toContain('"k"');
    expect(String(siem.secret)).toBe('[secret]');
  });

  it('names the file, the key and what was expected', () => {
    const bad = (text: string) => {
      try {
        parseAlertsConfig(text, 'a.yaml', env);
      } catch (e) {
        expect(e).toBeInstanceOf(AuditError);
        return (e as AuditError).message;
      }
      throw new Error('accepted');
    };
    expect(bad('receivers: []')).toMatch(/^a\.yaml: receivers: expected at least one receiver/);
    expect(bad('receivers: [{name: a, type: webhook, url: "http://x"}]')).toMatch(
      /receivers\[0\]\.secret: required/,
    );
    expect(bad('receivers: [{name: a, type: slack, url: "ftp://x"}]')).toMatch(
      /receivers\[0\]\.url: expected an http/,
    );
    expect(bad('receivers: [{name: a, type: slack, url: "http://x"}]\nroutes: [{receivers: [b]}]')).toMatch(
      /routes\[0\]\.receivers\[0\]: no receiver is named "b"/,
    );
    expect(
      bad('receivers: [{name: a, type: slack, url: "http://x"}]\ndefaults: {repeatInterval: soon}'),
    ).toMatch(/defaults\.repeatInterval: expected a duration/);
    expect(
      bad(
        'receivers: [{name: a, type: slack, url: "http://x"}]\nroutes: [{receivers: [a], match: {nope: 1}}]',
      ),
    ).toMatch(/routes\[0\]\.match\.nope: unknown key/);
    expect(bad('receivers: [\n')).toMatch(/not YAML/);
  });
});

import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

const C = (name: string) => resolve(ROOT, 'test/fixtures/clusters', name);
const DOCS = ['--cluster', C('docs-cluster.yaml'), '--cluster', C('docs-test-network-policy.yaml')];
const SHOP = ['--cluster', C('shop.yaml')];

interface JsonExplanation {
  verdict: { allowed: boolean; result: string; backends?: { pod: string; allowed: boolean }[] };
  src: { ip: string; pod?: string };
  dst: { ip: string; pod?: string; service?: string; port?: number };
  targets: {
    target: string;
    port?: number;
    explanation: {
      egress: {
        isolated: boolean;
        allowed: boolean;
        isolatedBy: string[];
        rules: { policy: string; matched: boolean; why: string }[];
      };
      ingress: {
        isolated: boolean;
        allowed: boolean;
        isolatedBy: string[];
        rules: { policy: string; matched: boolean; why: string }[];
      };
    };
  }[];
}

describe('netpol-audit explain', () => {
  it('explains an allowed connection rule by rule, for a person', async () => {
    const r = await runCli([
      'explain',
      ...DOCS,
      '--from',
      'default/frontend-6c9f8d7b5-x2k4p',
      '--to',
      'default/db-0',
      '--port',
      '6379',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('verdict: ALLOWED');
    expect(r.stdout).toContain('default/frontend-6c9f8d7b5-x2k4p (10.244.1.11)');
    // The destination side names the isolating policy and its matching rule.
    expect(r.stdout).toMatch(/ingress[\s\S]*isolated by: default\/test-network-policy/);
    expect(r.stdout).toMatch(/\[matched\] default\/test-network-policy ingress\[0\]/);
    // The source side is not isolated.
    expect(r.stdout).toMatch(/egress[\s\S]*no policy isolates it/);
  });

  it('explains a denial on the egress side with --json', async () => {
    const r = await runCli([
      'explain',
      ...DOCS,
      '--from',
      'default/db-0',
      '--to',
      '10.0.0.7',
      '--port',
      '5979',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const x = JSON.parse(r.stdout) as JsonExplanation;
    expect(x.verdict).toMatchObject({ allowed: false, result: 'denied' });
    expect(x.src).toMatchObject({ ip: '10.244.1.10', pod: 'default/db-0' });
    const egress = x.targets[0]!.explanation.egress;
    expect(egress).toMatchObject({
      isolated: true,
      allowed: false,
      isolatedBy: ['default/test-network-policy'],
    });
    // The one egress rule is listed and did not match: its port is 5978.
    expect(egress.rules).toHaveLength(1);
    expect(egress.rules[0]).toMatchObject({ policy: 'default/test-network-policy', matched: false });
    expect(egress.rules[0]!.why).toMatch(/5979|port/);
  });

  it('explains a Service per backend, and shows when backends disagree', async () => {
    const r = await runCli([
      'explain',
      ...SHOP,
      '--from',
      'shop/loadtest-5f6b8d9c7-k4j3h',
      '--to',
      'shop/cart',
      '--port',
      '80',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const x = JSON.parse(r.stdout) as JsonExplanation;
    expect(x.dst.service).toBe('shop/cart');
    // cart-0 (track=stable) admits only app=web; cart-1 (track=canary) also admits app=loadtest.
    expect(x.verdict.result).toBe('ambiguous');
    expect(x.targets.map((t) => [t.target, t.port, t.explanation.ingress.allowed])).toEqual([
      ['shop/cart-0', 8080, false],
      ['shop/cart-1', 8080, true],
    ]);
    const human = await runCli([
      'explain',
      ...SHOP,
      '--from',
      'shop/loadtest-5f6b8d9c7-k4j3h',
      '--to',
      'svc:shop/cart',
      '--port',
      '80',
    ]);
    expect(human.stdout).toContain('verdict: AMBIGUOUS');
    expect(human.stdout).toContain('to shop/cart-0 (10.244.1.20):8080: DENIED');
    expect(human.stdout).toContain('to shop/cart-1 (10.244.0.21):8080: allowed');
  });

  it('rejects unknown pods and missing ports as usage errors', async () => {
    const a = await runCli([
      'explain',
      ...DOCS,
      '--from',
      'default/nope',
      '--to',
      'default/db-0',
      '--port',
      '1',
    ]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("no pod 'default/nope'");
    const b = await runCli(['explain', ...DOCS, '--from', 'default/db-0', '--to', '10.0.0.7']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--port is required');
  });
});

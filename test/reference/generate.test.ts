import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { validateFlowRecord } from '../../schema/flow-record.js';
import { generateScenario, type KubeObject, Rng } from './generate.js';

const SEEDS = Array.from({ length: 200 }, (_, i) => i + 1);
const scenarios = SEEDS.map((s) => generateScenario(s));
const policies = scenarios.flatMap((s) => s.items.filter((o) => o.kind === 'NetworkPolicy'));
const json = JSON.stringify(policies);

function inAnyCidr(ip: string, cidr: string): boolean {
  const addr = ipaddr.parse(ip);
  const [net, bits] = ipaddr.parseCIDR(cidr);
  return addr.kind() === net.kind() && addr.match(net, bits);
}

describe('generateScenario', () => {
  it('is a function of the seed', () => {
    expect(generateScenario(42)).toEqual(generateScenario(42));
    expect(JSON.stringify(generateScenario(42))).not.toBe(JSON.stringify(generateScenario(43)));
  });

  it('emits valid FlowRecords with unique ids and no flow from an address to itself', () => {
    for (const s of scenarios) {
      const ids = new Set<string>();
      for (const f of s.flows) {
        const v = validateFlowRecord(f);
        expect(v.ok, JSON.stringify(v)).toBe(true);
        expect(f.src.ip).not.toBe(f.dst.ip);
        ids.add(f.id!);
      }
      expect(ids.size).toBe(s.flows.length);
    }
  });

  it('keeps scenarios disjoint, so that several can share one snapshot', () => {
    const owner = new Map<string, number>();
    for (const s of scenarios.slice(0, 100)) {
      for (const o of s.items) {
        if (o.kind === 'Pod' && o.status.phase === 'Running') {
          for (const { ip } of o.status.podIPs) {
            expect(owner.get(ip) ?? s.seed, `${ip} in seeds ${owner.get(ip)} and ${s.seed}`).toBe(s.seed);
            owner.set(ip, s.seed);
          }
        }
        if (o.kind === 'Namespace') expect(o.metadata.name.startsWith(`s${s.seed}-`)).toBe(true);
      }
    }
  });

  it('uses every policy feature the engine must handle', () => {
    for (const op of ['"In"', '"NotIn"', '"Exists"', '"DoesNotExist"'])
      expect(json).toContain(`"operator":${op}`);
    for (const p of ['"SCTP"', '"UDP"', '"TCP"']) expect(json).toContain(`"protocol":${p}`);
    expect(json).toContain('"endPort"');
    expect(json).toMatch(/"port":"[a-z-]+"/); // named ports
    expect(json).toContain('"except"');
    expect(json).toContain('::/0');
    const specs = policies.map((p) => p.spec as KubeObject);
    expect(specs.some((s) => !s.policyTypes)).toBe(true);
    expect(specs.some((s) => s.policyTypes?.includes('Egress'))).toBe(true);
    // default deny: selects everything, no rules
    expect(specs.some((s) => Object.keys(s.podSelector).length === 0 && !s.ingress && !s.egress)).toBe(true);
    // allow all: an empty rule
    expect(specs.some((s) => JSON.stringify(s.ingress ?? s.egress) === '[{}]')).toBe(true);
    const peers = specs.flatMap((s) =>
      [...(s.ingress ?? []), ...(s.egress ?? [])].flatMap((r) => r.from ?? r.to ?? []),
    );
    expect(peers.some((p) => p.podSelector && p.namespaceSelector)).toBe(true); // AND
    expect(specs.some((s) => (s.ingress ?? []).some((r: KubeObject) => (r.from ?? []).length > 1))).toBe(
      true,
    ); // OR
  });

  it('puts some pod IPs inside ipBlock excepts, and has hostNetwork and finished pods', () => {
    let podInExcept = false;
    for (const s of scenarios) {
      const ips = s.items
        .filter((o) => o.kind === 'Pod' && o.status.phase === 'Running' && !o.spec.hostNetwork)
        .flatMap((o) => o.status.podIPs.map((x: { ip: string }) => x.ip));
      const excepts =
        JSON.stringify(s.items.filter((o) => o.kind === 'NetworkPolicy')).match(/"except":\[[^\]]*\]/g) ?? [];
      for (const e of excepts)
        for (const cidr of JSON.parse(e.slice(9)) as string[])
          if (ips.some((ip) => inAnyCidr(ip, cidr))) podInExcept = true;
    }
    expect(podInExcept).toBe(true);
    const pods = scenarios.flatMap((s) => s.items.filter((o) => o.kind === 'Pod'));
    expect(pods.some((p) => p.spec.hostNetwork)).toBe(true);
    expect(pods.some((p) => p.status.phase === 'Succeeded')).toBe(true);
    expect(pods.some((p) => p.status.phase === 'Pending' && !p.status.podIP)).toBe(true);
    expect(pods.some((p) => p.spec.containers.length > 1)).toBe(true);
  });

  it('mixes protocols, families and ends', () => {
    const flows = scenarios.flatMap((s) => s.flows);
    for (const proto of ['TCP', 'UDP', 'SCTP', 'ICMP', 6, 17])
      expect(flows.some((f) => f.proto === proto)).toBe(true);
    expect(flows.some((f) => f.src.ip.includes(':'))).toBe(true);
    expect(flows.some((f) => f.dst.ip.startsWith('192.168.'))).toBe(true); // node addresses
    expect(flows.some((f) => f.dst.ip === '8.8.8.8' || f.dst.ip === '203.0.113.7')).toBe(true);
  });
});

describe('Rng', () => {
  it('stays in range and repeats per seed', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    for (let i = 0; i < 1000; i++) {
      const x = a.int(3, 9);
      expect(x).toBe(b.int(3, 9));
      expect(x >= 3 && x <= 9).toBe(true);
    }
  });
});

// Pure parts of the Kafka wiring (no broker): settings, broker lists, the judged-record codec.
import { describe, expect, it } from 'vitest';
import { isTransient } from '../../pipeline/kafka.js';
import type { StoredFlow } from '../../processor/store/index.js';
import { kafkajsLevel, kafkaSettings, parseBrokers, topicNames } from './settings.js';
import {
  decodeVerdict,
  decodeVerdicts,
  encodeVerdict,
  packVerdicts,
  type VerdictMessage,
} from './verdict.js';

const flow: StoredFlow = {
  start: 1000,
  end: 2000,
  proto: 'TCP',
  port: 9000,
  srcWorkload: 'dev/debug-shell',
  dstWorkload: 'shop/payments',
  srcName: '10.244.2.40',
  dstName: '10.244.2.20',
  packets: 4,
  bytes: 300,
  result: 'denied',
  classification: 'denied-but-observed',
  rules: [],
  evidence: { note: 'the judged record' },
};

describe('Kafka settings', () => {
  it('names the topics from a prefix', () => {
    expect(topicNames()).toEqual({
      flows: 'netpol-audit.flows',
      violations: 'netpol-audit.violations',
      deadLetter: 'netpol-audit.dead-letter',
      verdicts: 'netpol-audit.verdicts',
    });
    expect(topicNames('t1-').flows).toBe('t1-flows');
    expect(kafkaSettings({ brokers: ['h:1'] }).partitions.flows).toBe(6);
  });

  it('parses broker lists and names what is wrong', () => {
    expect(parseBrokers('a:9092, 127.0.0.1:1,[::1]:9')).toEqual(['a:9092', '127.0.0.1:1', '[::1]:9']);
    expect(() => parseBrokers('localhost')).toThrow("broker 'localhost' is not host:port");
    expect(() => parseBrokers(' , ')).toThrow('no broker given');
  });
});

describe('judged-record codec', () => {
  const v: VerdictMessage = {
    v: 1,
    source: { topic: 'f', partition: 3, offset: '42' },
    origin: 'o',
    seq: 7,
    flow,
  };

  it('round-trips, keyed by source partition, keeping evidence of a violation', () => {
    const m = encodeVerdict(v);
    expect(m.key).toBe('f/3');
    expect(decodeVerdict({ ...m, value: Buffer.from(String(m.value)) })).toEqual({ ok: true, verdict: v });
  });

  it('drops the evidence of an allowed flow (the store keeps none)', () => {
    const m = encodeVerdict({ ...v, flow: { ...flow, result: 'allowed', classification: 'allowed' } });
    const d = decodeVerdict(m);
    expect(d.ok && d.verdict.flow.evidence).toBeNull();
  });

  it('an allowed flow keeps its ingestion identity without its evidence (the lab found it lost: two nodes, two counts)', () => {
    const record = {
      v: 1,
      start: 1000,
      end: 2000,
      proto: 'UDP',
      src: { ip: '10.244.2.20', port: 40000 },
      dst: { ip: '10.244.1.2', port: 53 },
      packets: { fwd: 1, rev: 1 },
      bytes: { fwd: 40, rev: 40 },
      state: 'established',
    };
    const m = encodeVerdict({
      ...v,
      flow: { ...flow, result: 'allowed', classification: 'allowed', evidence: record },
    });
    const d = decodeVerdict(m);
    expect(d.ok && d.verdict.flow.evidence).toBeNull();
    expect(d.ok && d.verdict.flow.identity).toEqual({
      tuple: '17|10.244.1.2#53|10.244.2.20#40000',
      seq: 0,
      start: 1000,
    });
  });

  it.each([
    [
      'another schema',
      { headers: { 'netpol-audit-schema': 'flow-record', 'netpol-audit-schema-version': '1' } },
      'MESSAGE_WRONG_SCHEMA',
    ],
    [
      'a newer version',
      { headers: { 'netpol-audit-schema': 'judged-flow', 'netpol-audit-schema-version': '2' } },
      'MESSAGE_UNKNOWN_VERSION',
    ],
    ['bad JSON', { value: '{' }, 'MESSAGE_BAD_JSON'],
    ['no source', { value: JSON.stringify({ ...v, source: undefined }) }, 'MESSAGE_INVALID_RECORD'],
  ])('refuses %s', (_n, over, code) => {
    const d = decodeVerdict({ ...encodeVerdict(v), ...over });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.code).toBe(code);
  });
});

describe('verdict packs (a judge with --wire 2)', () => {
  const verdict = (i: number, partition = 3): VerdictMessage => ({
    v: 1,
    source: { topic: 'f', partition, offset: String(100 + (i >> 2)), index: i & 3 },
    flow: { ...flow, start: 1000 + i },
  });

  it('packs the verdicts of one source partition in order, at most N per pack, and unpacks them', () => {
    const messages = Array.from({ length: 25 }, (_, i) => encodeVerdict(verdict(i)));
    const packs = packVerdicts(messages, 10);
    expect(packs.map((p) => String(p.value).split('\n').length)).toEqual([10, 10, 5]);
    expect(packs.every((p) => p.key === 'f/3')).toBe(true);
    const back = packs.flatMap((p) => {
      const d = decodeVerdicts({ ...p, value: Buffer.from(String(p.value)) });
      if (!d.ok || !d.packed) throw new Error('not a pack');
      return d.items.map((it) => (it.ok ? it.verdict : undefined));
    });
    expect(back).toEqual(messages.map((m) => decodeVerdict(m).ok && JSON.parse(String(m.value))));
    // A v1 message still reads as one verdict.
    expect(decodeVerdicts(messages[0]!)).toEqual({ ok: true, packed: false, verdict: verdict(0) });
  });

  it('starts a new pack at another key and past the byte bound', () => {
    const mixed = [encodeVerdict(verdict(0, 1)), encodeVerdict(verdict(1, 1)), encodeVerdict(verdict(2, 2))];
    expect(packVerdicts(mixed).map((p) => [p.key, String(p.value).split('\n').length])).toEqual([
      ['f/1', 2],
      ['f/2', 1],
    ]);
    const one = String(mixed[0]!.value).length;
    // Room for two lines and their separator, not three.
    expect(packVerdicts(mixed.slice(0, 2).concat(mixed.slice(0, 2)), 1000, 2 * one + 2)).toHaveLength(2);
  });

  it('a bad line is refused alone, with its index; a pack of another version as a whole', () => {
    const [a, b] = [encodeVerdict(verdict(0)), encodeVerdict(verdict(1))];
    const pack = packVerdicts([a, b])[0]!;
    const d = decodeVerdicts({ ...pack, value: `${String(a.value)}\n{oops\n${String(b.value)}` });
    expect(
      d.ok && d.packed && d.items.map((it) => (it.ok ? it.index : `${it.code}@${it.index}:${it.raw}`)),
    ).toEqual([0, 'MESSAGE_BAD_JSON@1:{oops', 2]);
    const newer = decodeVerdicts({
      ...pack,
      headers: { ...pack.headers, 'netpol-audit-schema-version': '3' },
    });
    expect(newer.ok === false && newer.code).toBe('MESSAGE_UNKNOWN_VERSION');
  });
});

describe('consumer errors the processor recovers from', () => {
  const named = (name: string, cause?: Error) => Object.assign(new Error(name), { name, cause });

  it('a group coordinator not found, bare or wrapped by kafkajs as non-retriable, is transient', () => {
    expect(isTransient(named('KafkaJSGroupCoordinatorNotFound'))).toBe(true);
    expect(isTransient(named('KafkaJSNonRetriableError', named('KafkaJSGroupCoordinatorNotFound')))).toBe(
      true,
    );
    expect(isTransient(named('KafkaJSConnectionError'))).toBe(true);
  });

  it('anything else ends the processor with the error', () => {
    expect(isTransient(named('KafkaJSNonRetriableError'))).toBe(false);
    expect(isTransient(named('KafkaJSNonRetriableError', named('KafkaJSTopicAuthorizationFailed')))).toBe(
      false,
    );
    expect(isTransient(new TypeError('bug'))).toBe(false);
  });
});

describe("kafkajs' own log on a healthy start (#15)", () => {
  // kafkajs logLevel: ERROR 1, WARN 2, INFO 4, DEBUG 5.
  it('logs the conditions the pipeline retries at info, not error', () => {
    expect(
      kafkajsLevel(
        1,
        '[Connection] Response GroupCoordinator(key: 10, version: 2)',
        "The coordinator is loading and hence can't process requests",
      ),
    ).toBe('info');
    expect(
      kafkajsLevel(
        1,
        '[Consumer] Crash: KafkaJSGroupCoordinatorNotFound: The group coordinator is not available',
      ),
    ).toBe('info');
    expect(
      kafkajsLevel(
        2,
        'There is no leader for this topic-partition as we are in the middle of a leadership election',
      ),
    ).toBe('info');
    expect(kafkajsLevel(1, '[Connection] Connection error: connect ECONNREFUSED 127.0.0.1:9092')).toBe(
      'debug',
    );
  });

  it('keeps what is wrong at its level', () => {
    expect(kafkajsLevel(1, '[Producer] Topic authorization failed')).toBe('error');
    expect(kafkajsLevel(2, 'SASL authentication failed')).toBe('warn');
    expect(kafkajsLevel(4, 'Consumer has joined the group')).toBe('info');
  });
});

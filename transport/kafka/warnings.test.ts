import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../test/support/cli.js';

describe('warnings on a healthy start', () => {
  it("drops kafkajs' negative-timeout warning (Node.js 24) and prints every other warning", () => {
    const script = `
      import { createKafka, topicNames } from ${JSON.stringify(join(ROOT, 'dist/transport/kafka/settings.js'))};
      createKafka({ brokers: ['127.0.0.1:9'], clientId: 't', topics: topicNames(), partitions: { flows: 1, violations: 1, deadLetter: 1, verdicts: 1 }, replicationFactor: 1, group: 'g', sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 });
      setTimeout(() => {}, -1796497891514);
      process.emitWarning('-5 is a negative number.', 'TimeoutNegativeWarning');
      process.emitWarning('something a person should see', 'OtherWarning');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('TimeoutNegativeWarning');
    expect(r.stderr).not.toContain('negative number');
    expect(r.stderr).toContain('OtherWarning: something a person should see');
  });
});

/**
 * The container image (docs/deploy-image.md), built offline by scripts/build-image.sh (the image the
 * Containerfile describes) and run with podman the way deploy/ runs it: as the image's own user
 * 65532, with a read-only root filesystem, no network, the input mounted read-only and a writable
 * volume for the store.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, ROOT, runProgram } from '../support/cli.js';
import { requirePrograms } from '../support/programs.js';

const UID = 65532;
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
let image: string;
let data: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function podman(args: string[]): Run {
  const r = spawnSync('podman', args, { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `podman run` as a cluster would: read-only root filesystem, no network, nothing pulled. runc, and
 * rlimits no higher than the host's, because podman's defaults (crun; rlimits raised to the maximum)
 * need cgroup v2 or CAP_SYS_RESOURCE, which a CI machine inside a container may not have.
 */
function run(args: string[], opts: { entrypoint?: string; volumes?: string[] } = {}): Run {
  return podman([
    '--runtime',
    'runc',
    'run',
    '--rm',
    '--pull=never',
    '--network=none',
    '--read-only',
    '--ulimit',
    'nofile=4096:4096',
    '--ulimit',
    'nproc=4096:4096',
    ...(opts.volumes ?? []).flatMap((v) => ['-v', v]),
    ...(opts.entrypoint ? ['--entrypoint', opts.entrypoint] : []),
    image,
    ...args,
  ]);
}

function inspect(format: string): string {
  const r = podman(['image', 'inspect', '--format', format, image]);
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

/**
 * Runs the build without blocking this worker: a build of minutes inside spawnSync starves vitest's
 * worker of its event loop, and vitest then fails the run ("Timeout calling onTaskUpdate").
 */
function buildImage(): Promise<CliResult> {
  return runProgram('bash', [join(ROOT, 'scripts/build-image.sh')], { cwd: ROOT, timeoutMs: 1_500_000 });
}

beforeAll(async () => {
  requirePrograms('test/image', [
    'mmdebstrap',
    'buildah',
    'podman',
    'runc',
    'flock',
    'make',
    'g++',
    'python3',
  ]);
  // Cold (nothing cached under ~/.cache/netpol-audit/image) this downloads Debian packages and
  // Node.js and compiles better-sqlite3: a few minutes. Warm it finds the image up to date.
  const build = await buildImage();
  if (build.code !== 0) throw new Error(`scripts/build-image.sh failed:\n${build.stderr}`);
  process.stderr.write(build.stderr);
  image = build.stdout.trim().split('\n').at(-1) ?? '';
  data = mkdtempSync(join(tmpdir(), 'npa-image-'));
  // The volume the store goes in belongs to the image's user, as an emptyDir with fsGroup would.
  chownSync(data, UID, UID);
}, 1_600_000);
afterAll(() => {
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('the container image', () => {
  it('is named after the version in package.json and labelled (OCI)', () => {
    expect(image).toBe(`localhost/netpol-audit:${version}`);
    const labels = JSON.parse(inspect('{{json .Labels}}')) as Record<string, string>;
    expect(labels['org.opencontainers.image.title']).toBe('netpol-audit');
    expect(labels['org.opencontainers.image.version']).toBe(version);
    expect(labels['org.opencontainers.image.licenses']).toBe('Apache-2.0');
    expect(labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$/);
    expect(labels['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('reports its size', () => {
    const size = Number(inspect('{{.Size}}'));
    console.log(`image ${image}: ${size} bytes (${(size / 1e6).toFixed(0)} MB)`);
    expect(size).toBeGreaterThan(50e6);
    // Dev dependencies, compiler leftovers or a second Node would push it past this.
    expect(size).toBeLessThan(400e6);
  });

  it('runs the CLI as its entrypoint: --help', () => {
    expect(JSON.parse(inspect('{{json .Config.Entrypoint}}'))).toEqual(['node', '/app/dist/cli/index.js']);
    const r = run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: netpol-audit <command>');
    expect(r.stdout).toMatch(/^\s+audit\s+embedded audit/m);
  });

  it('runs under Node.js 24', () => {
    const r = run(['--version'], { entrypoint: 'node' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^v24\.\d+\.\d+$/);
    expect(r.stdout.trim()).toBe(`v${inspect('{{index .Labels "io.netpol-audit.node.version"}}')}`);
  });

  it('runs as the non-root user 65532 by default', () => {
    expect(inspect('{{.User}}')).toBe(`${UID}:${UID}`);
    const r = run(['-c', 'id -u; id -g'], { entrypoint: '/bin/sh' });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([`${UID}`, `${UID}`]);
  });

  it('holds the tools the collectors drive, and only production dependencies', () => {
    const r = run(
      [
        '-c',
        // python3 and libnetfilter_conntrack: the reliable conntrack listener (collectors/conntrack/reliable.ts).
        `tcpdump --version; conntrack --version; python3 -c "import ctypes; ctypes.CDLL('libnetfilter_conntrack.so.3'); print('reliable listener: ok')"; ls /app/node_modules /app/node_modules/.bin`,
      ],
      {
        entrypoint: '/bin/sh',
      },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tcpdump version \d/m);
    expect(r.stdout).toMatch(/^conntrack v\d/m);
    expect(r.stdout).toMatch(/^reliable listener: ok$/m);
    expect(r.stdout).toMatch(/^better-sqlite3$/m);
    expect(r.stdout).toMatch(/^kafkajs$/m);
    for (const dev of ['typescript', 'vitest', 'tsx', 'fast-check', '@biomejs', 'tsc'])
      expect(r.stdout).not.toMatch(new RegExp(`^${dev}$`, 'm'));
  });

  it('has a read-only root filesystem when run with --read-only; /tmp stays writable', () => {
    const r = run(
      ['-c', 'touch /app/x || echo app-ro; touch /data/x || echo data-ro; touch /tmp/x && echo tmp-rw'],
      {
        entrypoint: '/bin/sh',
      },
    );
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['app-ro', 'data-ro', 'tmp-rw']);
    expect(r.stderr).toContain('Read-only file system');
  });

  it('audits the shop example: examples read-only, the store on a volume', () => {
    const volumes = [`${join(ROOT, 'examples')}:/examples:ro`, `${data}:/data`];
    const r = run(
      [
        'audit',
        '/examples/shop/capture.pcap',
        '--cluster',
        '/examples/shop/cluster.yaml',
        '--db',
        '/data/shop.db',
        '--format',
        'json',
      ],
      { volumes },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const pairs = (rows: { srcWorkload: string; dstWorkload: string; proto: string; port: number }[]) =>
      rows.map((v) => `${v.srcWorkload} -> ${v.dstWorkload} ${v.proto}/${v.port}`).sort();
    expect(pairs(s.violations)).toEqual([
      'dev/debug-shell -> shop/cart TCP/8080',
      'dev/debug-shell -> shop/payments TCP/9000',
    ]);
    expect(pairs(s.deniedAttempts)).toEqual([
      'dev/debug-shell -> shop/cart TCP/5432',
      'shop/frontend -> shop/payments TCP/9000',
    ]);
    expect(s.issues).toEqual([]);
    // The store is on the volume, and a second container reads it back (better-sqlite3 built for
    // the image's Node, both times).
    expect(existsSync(join(data, 'shop.db'))).toBe(true);
    expect(readdirSync(data).filter((f) => !f.startsWith('shop.db'))).toEqual([]);
    const v = run(['violations', '--db', '/data/shop.db', '--format', 'json'], { volumes });
    expect(v.code).toBe(0);
    expect(pairs(JSON.parse(v.stdout))).toEqual(pairs(s.violations));

    // The readable summary names them too.
    const text = run(
      [
        'audit',
        '/examples/shop/capture.pcap',
        '--cluster',
        '/examples/shop/cluster.yaml',
        '--db',
        '/data/text.db',
      ],
      { volumes },
    );
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('VIOLATIONS: denied by the policies, observed to flow (2)');
    expect(text.stdout).toContain('  dev/debug-shell -> shop/payments TCP/9000: 1 flow');
    expect(text.stdout).toContain('  dev/debug-shell -> shop/cart TCP/8080: 1 flow');
  });
});

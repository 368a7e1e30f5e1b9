/**
 * The SQLite store's schema, as an ordered list of migrations. Each migration runs once, in its own
 * transaction, and is recorded in `schema_migrations`; a store opened by an older netpol-audit than
 * the one that wrote it refuses to run rather than guess. Times are Unix epoch milliseconds from
 * the data (flow times), except `runs.started_wall`/`finished_wall`, which say when a run happened.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  mode TEXT NOT NULL,                 -- 'embedded' | 'processor' | 'recorder'
  started_wall REAL NOT NULL,
  finished_wall REAL,
  inputs TEXT NOT NULL DEFAULT '[]',  -- JSON: files, topics
  stats TEXT NOT NULL DEFAULT '{}'    -- JSON: packets, flows, issues, ...
);

-- Each distinct version of a policy (by content hash), and when flows saw it in force.
CREATE TABLE policy_versions (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  policy TEXT NOT NULL,               -- namespace/name, or name for cluster-scoped kinds
  hash TEXT NOT NULL,
  spec TEXT NOT NULL,                 -- JSON
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  UNIQUE (kind, policy, hash)
);

-- Every rule of every policy seen, with its usage: rules never hit are rows with hits = 0.
CREATE TABLE rules (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  policy TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('ingress', 'egress')),
  rule_index INTEGER NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  defined_first REAL NOT NULL,        -- first time (data time) the rule was seen in force
  defined_last REAL NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  first_hit REAL,
  last_hit REAL,
  UNIQUE (kind, policy, direction, rule_index)
);

-- Per-day usage, so "not used since T" can be answered for any period the retention keeps.
CREATE TABLE rule_usage_daily (
  rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  day REAL NOT NULL,                  -- start of the UTC day, epoch ms
  hits INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_hit REAL NOT NULL,
  last_hit REAL NOT NULL,
  PRIMARY KEY (rule_id, day)
) WITHOUT ROWID;

-- Denied by the policies, and observed to flow (established or closed): enforcement failed.
-- Deduplicated by (window, source workload, destination, protocol, port).
CREATE TABLE violations (
  id INTEGER PRIMARY KEY,
  window_start REAL NOT NULL,
  src_workload TEXT NOT NULL,
  dst_workload TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,              -- -1 when the protocol has no ports
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  src_names TEXT NOT NULL,            -- JSON array of DNS-style names seen (capped)
  dst_names TEXT NOT NULL,
  evidence TEXT NOT NULL,             -- JSON array of judged flows (capped), the first ones in full
  UNIQUE (window_start, src_workload, dst_workload, proto, port)
);
CREATE INDEX violations_last_seen ON violations (last_seen);

-- Denied, and only attempted or rejected: enforcement worked. Same shape as violations.
CREATE TABLE denied_attempts (
  id INTEGER PRIMARY KEY,
  window_start REAL NOT NULL,
  src_workload TEXT NOT NULL,
  dst_workload TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  src_names TEXT NOT NULL,
  dst_names TEXT NOT NULL,
  evidence TEXT NOT NULL,
  UNIQUE (window_start, src_workload, dst_workload, proto, port)
);
CREATE INDEX denied_attempts_last_seen ON denied_attempts (last_seen);

-- Traffic between workloads per hour, whatever the verdict.
CREATE TABLE edges_hourly (
  hour REAL NOT NULL,
  src_workload TEXT NOT NULL,
  dst_workload TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  result TEXT NOT NULL,               -- allowed | denied | ambiguous
  flows INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (hour, src_workload, dst_workload, proto, port, result)
) WITHOUT ROWID;

-- Flows judged ambiguous (a Service whose backends disagree), aggregated like violations.
CREATE TABLE ambiguous_flows (
  window_start REAL NOT NULL,
  src_workload TEXT NOT NULL,
  dst_workload TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  flows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  PRIMARY KEY (window_start, src_workload, dst_workload, proto, port)
) WITHOUT ROWID;

-- Kafka positions, written in the same transaction as the data they produced (exactly once).
CREATE TABLE offsets (
  consumer TEXT NOT NULL,
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  next_offset TEXT NOT NULL,          -- Kafka offsets are 64-bit: kept as decimal text
  PRIMARY KEY (consumer, topic, partition)
) WITHOUT ROWID;
`,
  },
  {
    version: 2,
    name: 'flow identities',
    // The store keeps aggregates, not flows: to count each flow once whichever way it arrives again
    // (same capture, rerun, overlapping captures, a second observer), the identity of every counted
    // flow is kept, written in the same transaction as the aggregates it fed (docs/store.md,
    // "Ingestion identity"). Keyed by a 5 s time bucket first: a tuple-first key made every batch
    // dirty pages all over the table (8x the write time at 200k flows; bench/store-dedupe.ts).
    sql: `
CREATE TABLE flow_identities (
  bucket INTEGER NOT NULL,            -- floor(start / 5 s): leads the key so inserts append in time order
  tuple TEXT NOT NULL,                -- protocol number and the two endpoints, sorted
  seq INTEGER NOT NULL,               -- slice of a long flow; 0 for a whole flow
  start REAL NOT NULL,                -- data time of the first packet, epoch ms
  packets INTEGER NOT NULL,           -- as counted (the first observation stored)
  bytes INTEGER NOT NULL,
  run INTEGER,                        -- the run that counted it (runs.id), when known
  PRIMARY KEY (bucket, tuple, seq, start)
) WITHOUT ROWID;

-- An unfinished run (Ctrl-C, SIGKILL, full disk) whose inputs a later run read again in full: what
-- the interrupted run committed was either skipped or completed by the later one.
ALTER TABLE runs ADD COLUMN resumed_by INTEGER REFERENCES runs (id);
`,
  },
  {
    version: 3,
    name: 'guessed directions',
    // A flow whose start was not observed has its direction settled by the cluster or guessed
    // (docs/check.md, "Direction"); the report says which rows rest on a guess. Ambiguous flows get
    // the evidence violations have, so an auditor can see why each could not be settled.
    sql: `
ALTER TABLE violations ADD COLUMN direction_guessed INTEGER NOT NULL DEFAULT 0;      -- flows of the row
ALTER TABLE denied_attempts ADD COLUMN direction_guessed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ambiguous_flows ADD COLUMN direction_guessed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ambiguous_flows ADD COLUMN packets INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ambiguous_flows ADD COLUMN src_names TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ambiguous_flows ADD COLUMN dst_names TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ambiguous_flows ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';
`,
  },
  {
    version: 4,
    name: 'alerts',
    // Alerts are written in the same transaction as the flows that raised them, so the store's
    // exactly-once extends to them; a dispatcher delivers from the outbox (docs/alerts.md).
    sql: `
-- Alerts firing, between runs: the engine's state (JSON), so a rerun or a restart neither fires
-- again nor forgets to resolve.
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,                -- kind|source|destination|protocol|port, or scan|source
  state TEXT NOT NULL                 -- JSON AlertState
) WITHOUT ROWID;

-- One row per notification per receiver.
CREATE TABLE alert_outbox (
  id INTEGER PRIMARY KEY,
  receiver TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,      -- alert id + notification number: the same on every retry
  alert_id TEXT NOT NULL,
  event TEXT NOT NULL CHECK (event IN ('firing', 'repeat', 'resolved')),
  payload TEXT NOT NULL,              -- JSON AlertPayload (schema/alert.ts)
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_wall REAL NOT NULL,
  next_attempt_wall REAL NOT NULL,
  last_attempt_wall REAL,
  last_status INTEGER,                -- HTTP status of the last attempt, if any
  last_error TEXT,                    -- the receiver's answer or the network error (capped)
  UNIQUE (receiver, idempotency_key)
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_wall);
`,
  },
  {
    version: 5,
    name: 'report facts',
    // What a compliance report needs beyond the verdict aggregates, kept per day or hour so a report
    // for a past period is reproducible from the store alone (docs/report.md). Counted once per flow,
    // in the same transaction as the aggregates (ingestion identity decides, as for them).
    sql: `
-- Isolation coverage as in force when the day's first flow was judged (JSON CoverageSnapshot,
-- schema/report.ts). The first snapshot of a day is kept: a rerun writes the same one.
CREATE TABLE coverage_daily (
  day REAL PRIMARY KEY,
  as_of REAL NOT NULL,
  snapshot TEXT NOT NULL
);

-- Traffic between namespaces per day and classification ('(external)', '(node)', ... for non-pods).
CREATE TABLE namespace_traffic_daily (
  day REAL NOT NULL,
  src_namespace TEXT NOT NULL,
  dst_namespace TEXT NOT NULL,
  classification TEXT NOT NULL,
  flows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (day, src_namespace, dst_namespace, classification)
) WITHOUT ROWID;

-- Flows that reached a pod no NetworkPolicy isolates for ingress (or left one not isolated for
-- egress), per peer: "received connections from 14 workloads in 3 namespaces".
CREATE TABLE unisolated_traffic_daily (
  day REAL NOT NULL,
  workload TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('ingress', 'egress')),
  peer TEXT NOT NULL,
  peer_namespace TEXT NOT NULL,
  flows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (day, workload, direction, peer)
) WITHOUT ROWID;

-- Which collector reported, per hour: the gaps in the evidence.
CREATE TABLE observer_hours (
  hour REAL NOT NULL,
  observer TEXT NOT NULL,             -- source (pcap, live, conntrack, ...) and file or interface
  node TEXT NOT NULL,                 -- '' when the collector did not say
  flows INTEGER NOT NULL,
  PRIMARY KEY (hour, observer, node)
) WITHOUT ROWID;

-- Flows with an address in a node's pod CIDR that no pod held at flow time: not attributable.
CREATE TABLE unattributed_daily (
  day REAL NOT NULL,
  ip TEXT NOT NULL,
  node TEXT NOT NULL,
  flows INTEGER NOT NULL,
  PRIMARY KEY (day, ip, node)
) WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: 'replay edges',
    // What-if replay (docs/whatif.md): who each end was (labels, namespace labels, named ports, the
    // node) and the traffic between them per day, at the level the policy engine judges: the one
    // question that decided each flow. Counted once per flow with the aggregates.
    sql: `
-- A pod as policies see it (namespace, labels, namespace labels, named ports, hostNetwork) or a
-- node (name, labels, addresses, pod CIDRs): the canonical JSON is the key. Ids never change.
CREATE TABLE replay_identities (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('pod', 'node')),
  key TEXT NOT NULL UNIQUE,
  namespace TEXT NOT NULL,            -- '' for a node
  name TEXT NOT NULL                  -- the workload (namespace/name) or the node's name
);

-- The decisive engine question of each flow, aggregated per day: ends (address, pod identity,
-- node identity; 0 = none), protocol, destination port (-1: none), whether the peer answered, and
-- the classification at the time.
CREATE TABLE replay_edges_daily (
  day REAL NOT NULL,
  src_ip TEXT NOT NULL,
  src_pod INTEGER NOT NULL,
  src_node INTEGER NOT NULL,
  dst_ip TEXT NOT NULL,
  dst_pod INTEGER NOT NULL,
  dst_node INTEGER NOT NULL,
  proto INTEGER NOT NULL,
  port INTEGER NOT NULL,
  answered INTEGER NOT NULL,
  classification TEXT NOT NULL,
  flows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  PRIMARY KEY (day, src_ip, src_pod, src_node, dst_ip, dst_pod, dst_node, proto, port, answered, classification)
) WITHOUT ROWID;

-- Flows that one engine question does not decide (a Service judged across its backends, SNAT, a
-- guessed direction): counted, so replay says what it could not replay.
CREATE TABLE replay_skipped_daily (
  day REAL NOT NULL,
  reason TEXT NOT NULL,
  flows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (day, reason)
) WITHOUT ROWID;
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

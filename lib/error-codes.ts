/**
 * The catalogue of stable error codes: one entry per code, with its area, severity, whether it stops
 * the command (fatal, exit 3) and whether trying again may succeed (retriable: a lock released, a
 * disk freed, a tool or peer back). lib/errors.ts takes only these codes (ErrorCode), and
 * the tables of docs/errors.md are generated from it (npx tsx scripts/errors-doc.ts --write), so the code,
 * the types and the docs cannot drift apart. A code never changes meaning once released.
 */

/**
 * The areas, as the `##` headings of docs/errors.md name them. The document decides their order and
 * holds the prose around each table; scripts/errors-doc.ts fills each area's table between its markers
 * and refuses a document that lacks an area (or has one the catalogue does not know).
 */
export const ERROR_AREAS = [
  'Captures (collect pcap, collect live, audit)',
  'conntrack (collect conntrack)',
  'FlowRecords (check, process)',
  'Cluster snapshots and inventory',
  'Policies (NetworkPolicy and the cluster-scoped tiers)',
  'Store',
  'Output and internal failures',
  'Alerts and metrics (--alerts, alerts, --metrics-listen)',
  'Reports and evidence packs (report, verify-evidence)',
  'What-if and suggestions (whatif, suggest)',
  'honesty',
] as const;

export type ErrorArea = (typeof ERROR_AREAS)[number];

export interface ErrorCodeInfo {
  /** The section of docs/errors.md. */
  area: ErrorArea;
  /** `error`: the item was not used; `warning`: it was used, with the stated assumption. */
  severity: 'error' | 'warning';
  /** The command stops (exit 3) instead of going on with the rest of its input. */
  fatal: boolean;
  /** Trying again, unchanged, may succeed: a lock released, a disk freed, a tool or peer back. */
  retriable: boolean;
  /** What it means, for docs/errors.md (Markdown, one line). */
  meaning: string;
}

export const ERROR_CODES = {
  CAPTURE_UNREADABLE: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'the file cannot be opened or read (the OS error is given)',
  },
  CAPTURE_UNKNOWN_FORMAT: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'the first bytes are neither a pcap magic (either byte order, micro- or nanosecond, modified) nor a pcapng section header',
  },
  CAPTURE_TRUNCATED_FILE_HEADER: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'the input ended inside the file header',
  },
  CAPTURE_RESYNC: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'bytes skipped (offset and count given) while searching for the next plausible record or block after corruption; packets after it are read again',
  },
  PCAP_BAD_VERSION: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a pcap header with a version other than 2.x; the file is rejected',
  },
  PCAP_TRUNCATED_RECORD: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'the input ended inside a record header or body (a capture cut short); all packets before it are kept',
  },
  PCAP_BAD_CAPLEN: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      "a record's captured length exceeds the hard limit (256 KiB) or what the snapshot length allows: the header is garbage; resynchronisation follows",
  },
  PCAP_CAPLEN_GT_ORIGLEN: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'captured length above the original length; kept, the wire length is raised to the captured length',
  },
  PCAP_CAPLEN_GT_SNAPLEN: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: "captured length above the file's snapshot length but within the hard limit; kept",
  },
  PCAPNG_TRUNCATED_BLOCK: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'the input ended inside a block',
  },
  PCAPNG_BAD_BLOCK_LENGTH: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      "a block length not a multiple of 4, below 12, above the limit, or not repeated at the block's end",
  },
  PCAPNG_BAD_SECTION_HEADER: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a section header with an unknown byte-order magic or major version',
  },
  PCAPNG_BAD_OPTION: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: "an option runs past the end of its block; the block's other fields are used",
  },
  PCAPNG_UNKNOWN_INTERFACE: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a packet block names an interface no interface description block of the section declared',
  },
  PCAPNG_BAD_PACKET_LENGTH: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: "a packet's captured length does not fit its block or exceeds the limit",
  },
  PCAPNG_BLOCK_OUTSIDE_SECTION: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a block before the first section header',
  },
  PCAPNG_BAD_BLOCK_BODY: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a block too short for its fixed fields',
  },
  PACKET_TRUNCATED: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'the capture cut the packet inside its IP header; counted, no flow',
  },
  PACKET_MALFORMED: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      "the packet's IP or transport header is invalid (lying lengths, bad header length, an IPv6 Hop-by-Hop or Destination Options option running past its header, which the receiving kernel drops); counted, no flow",
  },
  PACKET_UNSUPPORTED_LINKTYPE: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: "an interface's link type is not decoded; its packets are counted but make no flows",
  },
  PACKET_ISSUES_SUPPRESSED: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'more packet-level issues than the listing limit; how many were not listed',
  },
  LIVE_CAPTURE_FAILED: {
    area: 'Captures (collect pcap, collect live, audit)',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning: 'tcpdump could not be started or failed (its message is given)',
  },
  CONNTRACK_MALFORMED_LINE: {
    area: 'conntrack (collect conntrack)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a line of `conntrack -E`/`-L` output that does not parse (line number and what was expected)',
  },
  CONNTRACK_TRUNCATED_LINE: {
    area: 'conntrack (collect conntrack)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'the input ends inside its last line (no newline after it): a log cut while written, whose last field may be cut short (an `id=` cut short would make a phantom second flow); the line makes no flow',
  },
  CONNTRACK_NO_TIMESTAMP: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: "events without `[timestamp]` (conntrack run without `-o timestamp`): times are the reader's",
  },
  CONNTRACK_NO_COUNTERS: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'accounting is off (`nf_conntrack_acct=0`): packets and bytes are unknown and reported as 0',
  },
  CONNTRACK_INPUT_UNREADABLE: {
    area: 'conntrack (collect conntrack)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'the event log cannot be read',
  },
  CONNTRACK_RESYNC_FAILED: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: true,
    meaning:
      'after conntrack reported lost events (ENOBUFS), the table dump taken to catch up failed: flows whose end was lost stay open until the active timeout or the stop',
  },
  CONNTRACK_STATE_UNREADABLE: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'the `--state` file of a previous run cannot be read or is not a state file: the collector starts afresh, and the flows open across the restart are reported from the table dump as if new (the store still counts each once when `nf_conntrack_timestamp=1` dates them)',
  },
  CONNTRACK_STATE_UNWRITABLE: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: true,
    meaning:
      'the `--state` file cannot be written (reported once): records still flow, but a restart would report the flows open at that time again',
  },
  CONNTRACK_SAVE_FAILED: {
    area: 'conntrack (collect conntrack)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'the `--save-events` file cannot be opened: the collector does not start without the evidence asked for',
  },
  CONNTRACK_SAVE_INTERRUPTED: {
    area: 'conntrack (collect conntrack)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'writing the `--save-events` file failed (reported once): the records go on, the conntrack lines from then on are not saved',
  },
  CONNTRACK_TOOL_FAILED: {
    area: 'conntrack (collect conntrack)',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning: 'the `conntrack` tool could not be started or failed',
  },
  FLOW_JSON_SYNTAX: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a line is not JSON (line number given); the run goes on',
  },
  FLOW_UNSUPPORTED_VERSION: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: "the record's `v` is not a version this build reads",
  },
  FLOW_INVALID_RECORD: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'JSON, but not a valid FlowRecord (the failing fields are listed)',
  },
  FLOW_INPUT_UNREADABLE: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'the flow input cannot be read at all',
  },
  MESSAGE_BAD_JSON: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a Kafka message whose value is not JSON; sent to the dead-letter topic with this reason',
  },
  MESSAGE_EMPTY: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a Kafka message without a value (tombstone); dead-lettered',
  },
  MESSAGE_INVALID_RECORD: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a Kafka message that is not a valid FlowRecord; dead-lettered',
  },
  MESSAGE_UNKNOWN_VERSION: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'a Kafka message whose schema-version header (or `v`) this processor does not read; dead-lettered',
  },
  JUDGE_FAILED: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'judging a valid FlowRecord from Kafka threw (a bug): the message goes to the dead-letter topic with this reason and the error message, so it is neither lost nor counted as allowed or denied',
  },
  MESSAGE_WRONG_SCHEMA: {
    area: 'FlowRecords (check, process)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a Kafka message whose schema header names another schema; dead-lettered',
  },
  SNAPSHOT_UNREADABLE: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'the snapshot file cannot be read',
  },
  SNAPSHOT_SYNTAX: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a YAML or JSON syntax error (line given); other documents are read',
  },
  SNAPSHOT_NOT_AN_OBJECT: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a document or List item that is not a Kubernetes object (no kind)',
  },
  SNAPSHOT_INVALID_FIELD: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'a field of a known kind with the wrong type or an impossible value (an unparsable IP, a non-string namespace, no name); the object is skipped',
  },
  SNAPSHOT_DUPLICATE_OBJECT: {
    area: 'Cluster snapshots and inventory',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'the same object twice; the later copy wins',
  },
  SNAPSHOT_MISSING_NAMESPACE: {
    area: 'Cluster snapshots and inventory',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'a pod or Service in a namespace the snapshot lacks; assumed with only its `kubernetes.io/metadata.name` label',
  },
  INVENTORY_DUPLICATE_IP: {
    area: 'Cluster snapshots and inventory',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'two live pods (or a pod and a node) claim one address; which one wins is stated',
  },
  KUBE_FORBIDDEN: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning:
      'the API server refused (HTTP 403) to list or watch a kind under the credentials in use; the message names the resource, the verb and the user. `snapshot` and the start of a live `process` stop; once a live `process` follows the cluster, it logs the code and retries with backoff. The ClusterRole of deploy/base/rbac.yaml grants what is needed (granting it cures this)',
  },
  KUBE_IN_CLUSTER_UNAVAILABLE: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      '`--in-cluster` outside a pod: the environment names no API server (Kubernetes sets its service host and port variables in every pod) or no service-account token is mounted at /var/run/secrets/kubernetes.io/serviceaccount',
  },
  TIMELINE_BAD_CHANGE: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a cluster change without a name, or whose kind does not match the object; ignored',
  },
  TIMELINE_BAD_TIME: {
    area: 'Cluster snapshots and inventory',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a cluster change whose time is not a number; ignored',
  },
  POLICY_MISSING_FIELD: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a required field is absent (`metadata.name`, a selector, `cidr`...)',
  },
  POLICY_INVALID_TYPE: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a field has the wrong JSON type',
  },
  POLICY_INVALID_SELECTOR: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'a label selector is malformed: unknown operator, `values` missing for In/NotIn or present for Exists/DoesNotExist',
  },
  POLICY_INVALID_LABEL: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a label key or value that Kubernetes would not accept',
  },
  POLICY_INVALID_PEER: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'a peer with an invalid combination (ipBlock together with selectors, none of the allowed fields, more than one where exactly one is allowed)',
  },
  POLICY_INVALID_CIDR: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a CIDR that does not parse',
  },
  POLICY_CIDR_HOST_BITS: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'a CIDR with host bits set; treated as its network',
  },
  POLICY_EXCEPT_OUTSIDE_CIDR: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'an `except` entry that is not a strict subset of its `cidr`',
  },
  POLICY_INVALID_PORT: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a port that is neither 1–65535 nor a valid port name',
  },
  POLICY_INVALID_END_PORT: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: '`endPort` below `port`, out of range, or with a named or missing `port`',
  },
  POLICY_INVALID_PORT_RANGE: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'an admin port range whose end is below (or, in v1alpha2, equal to) its start',
  },
  POLICY_INVALID_PROTOCOL: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a protocol other than TCP, UDP or SCTP',
  },
  POLICY_INVALID_POLICY_TYPE: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a `policyTypes` entry other than Ingress or Egress, or duplicates',
  },
  POLICY_DUPLICATE: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'the same policy twice; the later is ignored',
  },
  POLICY_INVALID_PRIORITY: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'an AdminNetworkPolicy/ClusterNetworkPolicy priority outside 0–1000',
  },
  POLICY_INVALID_ACTION: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a rule action other than Allow/Deny/Pass (Accept/Deny/Pass in v1alpha2)',
  },
  POLICY_INVALID_SUBJECT: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a cluster policy without exactly one of `namespaces` and `pods` as subject',
  },
  POLICY_INVALID_TIER: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a ClusterNetworkPolicy tier other than Admin or Baseline',
  },
  POLICY_BASELINE_NOT_DEFAULT: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'a BaselineAdminNetworkPolicy not named `default` (the API allows only that one)',
  },
  POLICY_TOO_MANY_RULES: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning: 'more rules in a direction than the API allows (100)',
  },
  POLICY_SAME_PRIORITY: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'two cluster policies share a priority in one tier; upstream leaves their order undefined, the order used is stated',
  },
  POLICY_UNKNOWN_PEER: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'a cluster-policy peer with no field this build knows: it fails closed as upstream asks',
  },
  POLICY_UNSUPPORTED_PEER: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'a `domainNames` peer: flows carry addresses, so it matches nothing',
  },
  POLICY_UNSUPPORTED_KIND: {
    area: 'Policies (NetworkPolicy and the cluster-scoped tiers)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning: 'a policy.networking.k8s.io kind or version this build does not evaluate; ignored',
  },
  STORE_SCHEMA_TOO_NEW: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'the SQLite file was written by a newer netpol-audit',
  },
  STORE_SCHEMA_OLD: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'a read-only command on a store that needs a migration; open it read-write once',
  },
  STORE_NOT_FOUND: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'a command that reads the store (`violations`, `rules`, `report`) was given a path where no file exists; nothing is created',
  },
  STORE_NOT_A_FILE: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: '`--db` names a directory',
  },
  STORE_NOT_A_DATABASE: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: '`--db` names a file that is not an SQLite database',
  },
  STORE_FOREIGN_DATABASE: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      "`--db` names another application's SQLite database (tables, but no netpol-audit schema): netpol-audit neither reads nor writes it",
  },
  STORE_LOCKED: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning: "another writer holds the store's lock longer than the 5 s busy timeout",
  },
  STORE_READONLY: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'a command that writes the store may not write the file or its directory',
  },
  STORE_FULL: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning:
      'the disk holding the store is full; the batch being written was rolled back whole (nothing half-stored)',
  },
  STORE_CORRUPT: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: 'SQLite reports the file damaged',
  },
  STORE_FAILED: {
    area: 'Store',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: "any other SQLite failure, with SQLite's own message and the path",
  },
  OUTPUT_WRITE_FAILED: {
    area: 'Output and internal failures',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning:
      'standard output (or an output file) could not be written: a full disk, `/dev/full`, an I/O error. A reader that goes away (`| head`, EPIPE) is not a failure: the command ends quietly',
  },
  INTERNAL_ERROR: {
    area: 'Output and internal failures',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'a bug: the message says what failed; `NETPOL_AUDIT_DEBUG=1` adds the stack trace, which is otherwise never printed',
  },
  REPORT_PDF_UNAVAILABLE: {
    area: 'Reports and evidence packs (report, verify-evidence)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      '`--format pdf` (or a pack with `--pdf`) needs a headless Chromium: none was found at `NETPOL_AUDIT_CHROMIUM` or `/usr/bin/chromium`, or it did not start. `--format html` writes the same report',
  },
  EVIDENCE_PACK_EXISTS: {
    area: 'Reports and evidence packs (report, verify-evidence)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'the evidence root already holds a pack for this period: packs are never rewritten (move it away to make it again)',
  },
  EVIDENCE_KEY_UNUSABLE: {
    area: 'Reports and evidence packs (report, verify-evidence)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      '`--sign-key` / `--public-key` cannot be read as a PEM or DER Ed25519 key (PKCS#8 private, SPKI public)',
  },
  EVIDENCE_NOT_FOUND: {
    area: 'Reports and evidence packs (report, verify-evidence)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning: '`verify-evidence` was given a path that does not exist or holds no pack (no `manifest.json`)',
  },
  EVIDENCE_PACK_CHANGED: {
    area: 'Reports and evidence packs (report, verify-evidence)',
    severity: 'error',
    fatal: false,
    retriable: false,
    meaning:
      'a file of a pack is missing, changed (its SHA-256 differs from the manifest), or was added; a manifest no longer hashes to what the next pack chained; a signature does not match. Each is named; `verify-evidence` exits 1',
  },
  WHATIF_DRAFT_INVALID: {
    area: 'What-if and suggestions (whatif, suggest)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'a draft given to `whatif --apply` holds something other than NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy objects, or no policy at all; the file is named',
  },
  WHATIF_DELETE_UNKNOWN: {
    area: 'What-if and suggestions (whatif, suggest)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      '`whatif --delete` names no policy in force, or is not of the form `NetworkPolicy/NAMESPACE/NAME` or `AdminNetworkPolicy|BaselineAdminNetworkPolicy|ClusterNetworkPolicy/NAME`',
  },
  WHATIF_NOT_REPLAYABLE: {
    area: 'What-if and suggestions (whatif, suggest)',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'part of the period cannot be replayed: days recorded before the store kept replay data (migration 6), or flows no single policy question decided (a Service judged across its backends, SNAT, a guessed direction). They are counted in the output, never taken as unaffected',
  },
  METRICS_LISTEN_FAILED: {
    area: 'Alerts and metrics (--alerts, alerts, --metrics-listen)',
    severity: 'error',
    fatal: true,
    retriable: true,
    meaning:
      '`--metrics-listen` is not HOST:PORT, or the address cannot be listened on (in use, no permission): the command stops before it starts its work',
  },
  ALERTS_CONFIG_INVALID: {
    area: 'Alerts and metrics (--alerts, alerts, --metrics-listen)',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'the `--alerts` file cannot be read, is not YAML, or a key is wrong: the message names the file, the key (`receivers[0].secret.env`) and what was expected; secrets are never quoted. `audit` stops before opening the store',
  },
  AUDIT_SNAPSHOT_UNUSABLE: {
    area: 'honesty',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'a `--cluster` snapshot is missing, unreadable (a directory, no permission) or not valid YAML/JSON (the underlying `SNAPSHOT_UNREADABLE` / `SNAPSHOT_SYNTAX` issues are quoted); `audit` stops before opening the store, nothing is stored',
  },
  AUDIT_SNAPSHOT_EMPTY: {
    area: 'honesty',
    severity: 'error',
    fatal: true,
    retriable: false,
    meaning:
      'the snapshots hold no Kubernetes object at all (0 bytes, only comments: a failed `kubectl get ... > cluster.yaml`); judging against an empty cluster would allow everything, so `audit` stops before opening the store',
  },
  AUDIT_SNAPSHOT_MATCHES_NO_FLOW: {
    area: 'honesty',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'no flow of the run has an address the snapshot knows (pod, service or node): the snapshot is probably of another cluster or time. In the summary, in the run\'s record, and in `report`\'s "Input problems"',
  },
  CONNTRACK_IMPLAUSIBLE_TIME: {
    area: 'honesty',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'a timestamped conntrack line whose time fails the same checks as `PACKET_IMPLAUSIBLE_TIME` (the line number is given); counted (`implausibleTime`), no flow',
  },
  PACKET_IMPLAUSIBLE_TIME: {
    area: 'honesty',
    severity: 'warning',
    fatal: false,
    retriable: false,
    meaning:
      'a packet\'s timestamp lies more than a day in the future of the wall clock (as the packet is read), more than a day in its past in a live capture, more than 30 days from the packets around it (which agree with each other; docs/trust.md, "Plausible time"), or is not a valid time: counted (`implausibleTime` in the summary), no flow, so it moves no period',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

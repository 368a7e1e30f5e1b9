import { readFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { isMap, isNode, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import { type InputIssue, type InputLocation, issue } from '../../lib/errors.js';
import { isJsonObject, type JsonObject } from '../../lib/json.js';
import type {
  ClusterModel,
  ContainerPortModel,
  EndpointModel,
  EndpointSliceModel,
  L4Protocol,
  NamespaceModel,
  NodeModel,
  PodModel,
  ServiceModel,
  ServicePortModel,
} from './model.js';

/**
 * Reads cluster snapshots: what `kubectl get namespaces,pods,nodes,services,endpointslices,networkpolicies
 * -A -o yaml` (or `-o json`) prints. kubectl wraps several kinds in a `List`; people also concatenate
 * manifests into multi-document YAML, or save one object per file. All three shapes are accepted, in any
 * number of files. A malformed object is reported (file, document, item, object, field) and skipped; the
 * rest of the snapshot still loads, because one odd object must not hide the whole cluster.
 */

export const SNAPSHOT_ISSUE = {
  /** The file cannot be read. */
  unreadable: 'SNAPSHOT_UNREADABLE',
  /** YAML/JSON syntax error in a document. */
  syntax: 'SNAPSHOT_SYNTAX',
  /** A document or List item that is not a Kubernetes object (no kind, not a mapping). */
  notAnObject: 'SNAPSHOT_NOT_AN_OBJECT',
  /** A field of a known kind has the wrong type or an impossible value. */
  invalidField: 'SNAPSHOT_INVALID_FIELD',
  /** The same object (kind, namespace, name) appears twice; the later copy wins. */
  duplicateObject: 'SNAPSHOT_DUPLICATE_OBJECT',
  /** A pod or service names a namespace the snapshot does not contain. */
  missingNamespace: 'SNAPSHOT_MISSING_NAMESPACE',
} as const;

export interface SnapshotSource {
  /** File name or label used in issues. */
  source: string;
  text: string;
}

export interface SnapshotResult {
  cluster: ClusterModel;
  issues: InputIssue[];
  /** Objects read, by kind (known kinds only). */
  kinds: Record<string, number>;
  /** Objects of kinds the processor does not use, by kind; they are skipped on purpose. */
  ignored: Record<string, number>;
  /**
   * Where each policy came from, keyed as the policy compiler names policies (`namespace/name` for
   * NetworkPolicy, `name` for cluster-scoped kinds), so its issues can name the file and line.
   */
  policyLocations: Map<string, InputLocation>;
}

/** Reads and parses snapshot files; unreadable files become issues. */
export async function loadSnapshotFiles(paths: string[]): Promise<SnapshotResult> {
  const sources: SnapshotSource[] = [];
  const issues: InputIssue[] = [];
  for (const path of paths) {
    try {
      sources.push({ source: path, text: await readFile(path, 'utf8') });
    } catch (err) {
      issues.push(
        issue(SNAPSHOT_ISSUE.unreadable, `cannot read snapshot: ${(err as Error).message}`, { source: path }),
      );
    }
  }
  const result = parseSnapshot(sources);
  result.issues.unshift(...issues);
  return result;
}

/** Parses snapshot texts into one ClusterModel. Later files win over earlier ones for the same object. */
export function parseSnapshot(sources: SnapshotSource[]): SnapshotResult {
  const builder = new ClusterModelBuilder();
  for (const { source, text } of sources) {
    if (parseJson(builder, source, text)) continue;
    const lineCounter = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: false });
    const list = Array.isArray(docs) ? docs : [];
    list.forEach((doc, docIndex) => {
      const lineOf = (offset: number | undefined) =>
        offset === undefined ? undefined : lineCounter.linePos(offset).line;
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        builder.issues.push(
          issue(SNAPSHOT_ISSUE.syntax, e.message.split('\n')[0]!, {
            source,
            record: docIndex,
            line: lineOf(e.pos[0]),
          }),
        );
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: 1000 });
      if (value === null || value === undefined) return; // empty document (e.g. a trailing `---`)
      const itemsNode = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
      addDocument(
        builder,
        value,
        { source, record: docIndex, line: lineOf(doc.contents?.range?.[0]) },
        (i) => {
          const node = isSeq(itemsNode) ? itemsNode.items[i] : undefined;
          return lineOf(isNode(node) ? node.range?.[0] : undefined);
        },
      );
    });
  }
  return builder.finish();
}

/**
 * `kubectl -o json` output goes through JSON.parse: the yaml parser is some 50 times slower on it, which
 * matters for clusters with thousands of pods. Locations then name the item (`items[i].`) but no line.
 * Text that is not valid JSON is left to the YAML parser, which reports where it broke.
 */
function parseJson(builder: ClusterModelBuilder, source: string, text: string): boolean {
  if (!/^\s*[{[]/.test(text)) return false;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  const at = { source, record: 0, line: undefined };
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      builder.add(item, { ...at, prefix: `[${i}].` });
    });
  } else {
    addDocument(builder, value, at, () => undefined);
  }
  return true;
}

/** Adds one parsed document: a List item by item (each at `itemLine(i)`), anything else as one object. */
function addDocument(
  builder: ClusterModelBuilder,
  value: unknown,
  at: { source: string; record: number; line: number | undefined },
  itemLine: (index: number) => number | undefined,
): void {
  if (
    isJsonObject(value) &&
    typeof value.kind === 'string' &&
    value.kind.endsWith('List') &&
    'items' in value
  ) {
    if (!Array.isArray(value.items)) {
      builder.issues.push(
        issue(SNAPSHOT_ISSUE.notAnObject, 'items of a List is not a sequence', { ...at, field: 'items' }),
      );
      return;
    }
    value.items.forEach((item, i) => {
      builder.add(item, { ...at, line: itemLine(i), prefix: `items[${i}].` });
    });
    return;
  }
  builder.add(value, { ...at, prefix: '' });
}

export interface ObjectLocation {
  source: string;
  record: number;
  line: number | undefined;
  /** Path of the object inside its document, e.g. `items[3].`. */
  prefix: string;
}

/** Thrown inside an object's parser to reject the object; caught by `add`. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

function optString(obj: JsonObject, key: string, field: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new FieldError(field, `expected a string, found ${describe(v)}`);
  return v;
}

function optObject(obj: JsonObject, key: string, field: string): JsonObject | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!isJsonObject(v)) throw new FieldError(field, `expected a mapping, found ${describe(v)}`);
  return v;
}

function optArray(obj: JsonObject, key: string, field: string): unknown[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FieldError(field, `expected a list, found ${describe(v)}`);
  return v;
}

function element(v: unknown, field: string): JsonObject {
  if (!isJsonObject(v)) throw new FieldError(field, `expected a mapping, found ${describe(v)}`);
  return v;
}

function labelsOf(obj: JsonObject | undefined, key: string, field: string): Record<string, string> {
  const m = obj ? optObject(obj, key, field) : undefined;
  const out: Record<string, string> = {};
  if (!m) return out;
  for (const [k, v] of Object.entries(m)) {
    // YAML turns unquoted `true` or `8080` into non-strings; the API server only ever stores strings.
    if (typeof v !== 'string')
      throw new FieldError(`${field}.${k}`, `expected a string, found ${describe(v)}`);
    out[k] = v;
  }
  return out;
}

function ipOf(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ipaddr.isValid(v)) {
    throw new FieldError(field, `expected an IP address, found ${describe(v)}`);
  }
  return v;
}

function cidrOf(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new FieldError(field, `expected a CIDR, found ${describe(v)}`);
  try {
    ipaddr.parseCIDR(v);
  } catch {
    throw new FieldError(field, `expected a CIDR, found ${describe(v)}`);
  }
  return v;
}

function portNumber(v: unknown, field: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65535) {
    throw new FieldError(field, `expected a port number ${min}-65535, found ${describe(v)}`);
  }
  return v;
}

function protocolOf(obj: JsonObject, field: string): L4Protocol {
  const p = obj.protocol;
  if (p === undefined || p === null) return 'TCP';
  if (p === 'TCP' || p === 'UDP' || p === 'SCTP') return p;
  throw new FieldError(field, `expected TCP, UDP or SCTP, found ${describe(p)}`);
}

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Accumulates Kubernetes objects into a ClusterModel. Exposed so that other readers (a live watcher,
 * tests) can feed objects one at a time.
 */
export class ClusterModelBuilder {
  readonly issues: InputIssue[] = [];
  readonly kinds: Record<string, number> = {};
  readonly ignored: Record<string, number> = {};
  private readonly namespaces = new Map<string, NamespaceModel>();
  private readonly pods = new Map<string, PodModel>();
  private readonly nodes = new Map<string, NodeModel>();
  private readonly services = new Map<string, ServiceModel>();
  private readonly slices = new Map<string, EndpointSliceModel>();
  private readonly policies = new Map<string, unknown>();
  private readonly clusterPolicies = new Map<string, unknown>();
  private readonly policyLocations = new Map<string, InputLocation>();
  /** Where each namespace was first referenced, so a warning about a missing one can point at a file. */
  private readonly namespaceFirstUse = new Map<string, InputLocation>();

  add(obj: unknown, at: ObjectLocation): void {
    const loc = (field?: string, object?: string): InputLocation => {
      const l: InputLocation = { source: at.source, record: at.record };
      if (at.line !== undefined) l.line = at.line;
      if (object !== undefined) l.object = object;
      if (field !== undefined) l.field = `${at.prefix}${field}`;
      return l;
    };
    if (!isJsonObject(obj) || typeof obj.kind !== 'string') {
      this.issues.push(
        issue(SNAPSHOT_ISSUE.notAnObject, `not a Kubernetes object (no kind): ${describe(obj)}`, loc('kind')),
      );
      return;
    }
    const kind = obj.kind;
    const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
    const meta = isJsonObject(obj.metadata) ? obj.metadata : undefined;
    const name = meta && typeof meta.name === 'string' ? meta.name : undefined;
    const namespace = meta && typeof meta.namespace === 'string' ? meta.namespace : undefined;
    const handler = this.handlerFor(kind, apiVersion);
    if (!handler) {
      this.ignored[kind] = (this.ignored[kind] ?? 0) + 1;
      return;
    }
    const clusterScoped =
      kind === 'Namespace' || kind === 'Node' || apiVersion.startsWith('policy.networking.k8s.io/');
    // Namespaced objects without a namespace come from manifests meant for `kubectl apply`, which uses `default`.
    const ns = clusterScoped ? undefined : (namespace ?? 'default');
    const objectName = ns !== undefined ? `${ns}/${name ?? '?'}` : (name ?? '?');
    if (name === undefined || name === '') {
      this.issues.push(
        issue(SNAPSHOT_ISSUE.invalidField, `${kind} without metadata.name`, loc('metadata.name', objectName)),
      );
      return;
    }
    if (
      meta &&
      meta.namespace !== undefined &&
      meta.namespace !== null &&
      typeof meta.namespace !== 'string'
    ) {
      this.issues.push(
        issue(
          SNAPSHOT_ISSUE.invalidField,
          `${kind} ${name}: metadata.namespace must be a string, got ${describe(meta.namespace)}`,
          loc('metadata.namespace', name),
        ),
      );
      return;
    }
    if (ns !== undefined && !this.namespaceFirstUse.has(ns)) this.namespaceFirstUse.set(ns, loc());
    try {
      handler(obj, name, ns ?? '', (key) => this.noteDuplicate(key, kind, loc(undefined, objectName)));
      if (kind === 'NetworkPolicy' || apiVersion.startsWith('policy.networking.k8s.io/')) {
        const l: InputLocation = { source: at.source, record: at.record };
        if (at.line !== undefined) l.line = at.line;
        this.policyLocations.set(objectName, l);
      }
      this.kinds[kind] = (this.kinds[kind] ?? 0) + 1;
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      this.issues.push(
        issue(SNAPSHOT_ISSUE.invalidField, `${kind} skipped: ${err.message}`, loc(err.field, objectName)),
      );
    }
  }

  private noteDuplicate(present: boolean, kind: string, l: InputLocation): void {
    if (present) {
      this.issues.push(
        issue(
          SNAPSHOT_ISSUE.duplicateObject,
          `${kind} appears more than once; the later copy is used`,
          l,
          'warning',
        ),
      );
    }
  }

  private handlerFor(
    kind: string,
    apiVersion: string,
  ): ((obj: JsonObject, name: string, ns: string, dup: (present: boolean) => void) => void) | undefined {
    if (apiVersion.startsWith('policy.networking.k8s.io/')) {
      return (obj, name, _ns, dup) => {
        const key = `${kind}/${name}`;
        dup(this.clusterPolicies.has(key));
        this.clusterPolicies.set(key, obj);
      };
    }
    switch (kind) {
      case 'Namespace':
        return (obj, name, _ns, dup) => {
          dup(this.namespaces.has(name));
          this.namespaces.set(name, parseNamespace(obj, name));
        };
      case 'Pod':
        return (obj, name, ns, dup) => {
          const pod = parsePod(obj, name, ns);
          dup(this.pods.has(`${ns}/${name}`));
          this.pods.set(`${ns}/${name}`, pod);
        };
      case 'Node':
        return (obj, name, _ns, dup) => {
          const node = parseNode(obj, name);
          dup(this.nodes.has(name));
          this.nodes.set(name, node);
        };
      case 'Service':
        return (obj, name, ns, dup) => {
          const svc = parseService(obj, name, ns);
          dup(this.services.has(`${ns}/${name}`));
          this.services.set(`${ns}/${name}`, svc);
        };
      case 'EndpointSlice':
        if (!apiVersion.startsWith('discovery.k8s.io/')) return undefined;
        return (obj, name, ns, dup) => {
          const slice = parseEndpointSlice(obj, name, ns);
          dup(this.slices.has(`${ns}/${name}`));
          this.slices.set(`${ns}/${name}`, slice);
        };
      case 'NetworkPolicy':
        if (!apiVersion.startsWith('networking.k8s.io/')) return undefined;
        return (obj, name, ns, dup) => {
          dup(this.policies.has(`${ns}/${name}`));
          // The compiler needs the namespace even when a manifest left it implicit.
          const meta = isJsonObject(obj.metadata) ? obj.metadata : {};
          this.policies.set(`${ns}/${name}`, { ...obj, metadata: { ...meta, namespace: ns } });
        };
      default:
        return undefined;
    }
  }

  /**
   * Parses one object on its own, for readers that keep objects themselves (the time-versioned
   * inventory): the model this builder would hold, under the key it would hold it by (`ns/name`,
   * `name` for Namespace and Node, `Kind/name` for cluster-scoped policies); no model when the object
   * was rejected (see issues) or is of a kind the processor does not use.
   */
  static parseObject(
    obj: unknown,
    at: ObjectLocation,
  ): { key?: string; model?: unknown; issues: InputIssue[] } {
    const b = new ClusterModelBuilder();
    b.add(obj, at);
    for (const m of [b.namespaces, b.pods, b.nodes, b.services, b.slices, b.policies, b.clusterPolicies]) {
      for (const [key, model] of m as Map<string, unknown>) return { key, model, issues: b.issues };
    }
    return { issues: b.issues };
  }

  finish(): SnapshotResult {
    const namespaces = [...this.namespaces.values()];
    // Policies select namespaces by label; a namespace the snapshot lacks would match nothing, which would
    // silently turn namespaceSelector rules into denials. Its name label is certain (the API server sets it).
    const referenced = new Set<string>();
    for (const p of this.pods.values()) referenced.add(p.namespace);
    for (const s of this.services.values()) referenced.add(s.namespace);
    for (const ns of referenced) {
      if (!this.namespaces.has(ns)) {
        namespaces.push({ name: ns, labels: { [NAMESPACE_NAME_LABEL]: ns } });
        this.issues.push(
          issue(
            SNAPSHOT_ISSUE.missingNamespace,
            `namespace ${ns} is used but not in the snapshot; assuming only the label ${NAMESPACE_NAME_LABEL}=${ns}`,
            { ...this.namespaceFirstUse.get(ns), object: ns },
            'warning',
          ),
        );
      }
    }
    const cluster: ClusterModel = {
      namespaces,
      pods: [...this.pods.values()],
      nodes: [...this.nodes.values()],
      services: [...this.services.values()],
      endpointSlices: [...this.slices.values()],
      networkPolicies: [...this.policies.values()],
      clusterNetworkPolicies: [...this.clusterPolicies.values()],
    };
    return {
      cluster,
      issues: this.issues,
      kinds: this.kinds,
      ignored: this.ignored,
      policyLocations: this.policyLocations,
    };
  }
}

function parseNamespace(obj: JsonObject, name: string): NamespaceModel {
  const meta = element(obj.metadata, 'metadata');
  const labels: Record<string, string> = labelsOf(meta, 'labels', 'metadata.labels');
  labels[NAMESPACE_NAME_LABEL] ??= name;
  return { name, labels };
}

function containerPorts(spec: JsonObject, key: 'containers' | 'initContainers'): ContainerPortModel[] {
  const out: ContainerPortModel[] = [];
  optArray(spec, key, `spec.${key}`).forEach((c, ci) => {
    const container = element(c, `spec.${key}[${ci}]`);
    optArray(container, 'ports', `spec.${key}[${ci}].ports`).forEach((p, pi) => {
      const field = `spec.${key}[${ci}].ports[${pi}]`;
      const port = element(p, field);
      const cp: ContainerPortModel = {
        containerPort: portNumber(port.containerPort, `${field}.containerPort`),
        protocol: protocolOf(port, `${field}.protocol`),
      };
      const pname = optString(port, 'name', `${field}.name`);
      if (pname) cp.name = pname;
      out.push(cp);
    });
  });
  return out;
}

function parsePod(obj: JsonObject, name: string, namespace: string): PodModel {
  const meta = element(obj.metadata, 'metadata');
  const spec = optObject(obj, 'spec', 'spec') ?? {};
  const status = optObject(obj, 'status', 'status') ?? {};
  const ips: string[] = [];
  const podIPs = optArray(status, 'podIPs', 'status.podIPs');
  podIPs.forEach((e, i) => {
    const ip = ipOf(element(e, `status.podIPs[${i}]`).ip, `status.podIPs[${i}].ip`);
    if (!ips.includes(ip)) ips.push(ip);
  });
  const podIP = optString(status, 'podIP', 'status.podIP');
  if (podIP !== undefined && podIP !== '') {
    // podIP is podIPs[0] on current API servers; older ones only fill podIP.
    const ip = ipOf(podIP, 'status.podIP');
    if (!ips.includes(ip)) ips.unshift(ip);
  }
  const hostNetwork = spec.hostNetwork;
  if (hostNetwork !== undefined && hostNetwork !== null && typeof hostNetwork !== 'boolean') {
    throw new FieldError('spec.hostNetwork', `expected true or false, found ${describe(hostNetwork)}`);
  }
  const pod: PodModel = {
    namespace,
    name,
    labels: labelsOf(meta, 'labels', 'metadata.labels'),
    ips,
    hostNetwork: hostNetwork === true,
    phase: optString(status, 'phase', 'status.phase') ?? 'Unknown',
    ports: [...containerPorts(spec, 'containers'), ...containerPorts(spec, 'initContainers')],
  };
  const uid = optString(meta, 'uid', 'metadata.uid');
  if (uid) pod.uid = uid;
  const nodeName = optString(spec, 'nodeName', 'spec.nodeName');
  if (nodeName) pod.nodeName = nodeName;
  return pod;
}

function parseNode(obj: JsonObject, name: string): NodeModel {
  const spec = optObject(obj, 'spec', 'spec') ?? {};
  const status = optObject(obj, 'status', 'status') ?? {};
  const addresses: string[] = [];
  optArray(status, 'addresses', 'status.addresses').forEach((a, i) => {
    const addr = element(a, `status.addresses[${i}]`);
    if (addr.type !== 'InternalIP' && addr.type !== 'ExternalIP') return;
    const ip = ipOf(addr.address, `status.addresses[${i}].address`);
    if (!addresses.includes(ip)) addresses.push(ip);
  });
  const podCIDRs = optArray(spec, 'podCIDRs', 'spec.podCIDRs').map((c, i) =>
    cidrOf(c, `spec.podCIDRs[${i}]`),
  );
  const podCIDR = optString(spec, 'podCIDR', 'spec.podCIDR');
  if (podCIDR && !podCIDRs.includes(podCIDR)) podCIDRs.unshift(cidrOf(podCIDR, 'spec.podCIDR'));
  const labels = labelsOf(optObject(obj, 'metadata', 'metadata'), 'labels', 'metadata.labels');
  return Object.keys(labels).length ? { name, addresses, podCIDRs, labels } : { name, addresses, podCIDRs };
}

function parseService(obj: JsonObject, name: string, namespace: string): ServiceModel {
  const spec = optObject(obj, 'spec', 'spec') ?? {};
  const clusterIPs: string[] = [];
  const ipList = optArray(spec, 'clusterIPs', 'spec.clusterIPs');
  const single = optString(spec, 'clusterIP', 'spec.clusterIP');
  const all = ipList.length > 0 ? ipList : single !== undefined ? [single] : [];
  all.forEach((ip, i) => {
    if (ip === 'None' || ip === '') return; // headless
    const v = ipOf(ip, ipList.length > 0 ? `spec.clusterIPs[${i}]` : 'spec.clusterIP');
    if (!clusterIPs.includes(v)) clusterIPs.push(v);
  });
  const ports: ServicePortModel[] = optArray(spec, 'ports', 'spec.ports').map((p, i) => {
    const field = `spec.ports[${i}]`;
    const port = element(p, field);
    const number = portNumber(port.port, `${field}.port`);
    let targetPort: number | string = number;
    const t = port.targetPort;
    if (typeof t === 'number') targetPort = portNumber(t, `${field}.targetPort`);
    else if (typeof t === 'string' && t !== '') {
      // IntOrString: "8080" in YAML quotes is still a number to the API server.
      targetPort = /^\d+$/.test(t) ? portNumber(Number(t), `${field}.targetPort`) : t;
    } else if (t !== undefined && t !== null && t !== '') {
      throw new FieldError(`${field}.targetPort`, `expected a port number or name, found ${describe(t)}`);
    }
    const sp: ServicePortModel = {
      port: number,
      targetPort,
      protocol: protocolOf(port, `${field}.protocol`),
    };
    const pname = optString(port, 'name', `${field}.name`);
    if (pname) sp.name = pname;
    return sp;
  });
  const svc: ServiceModel = {
    namespace,
    name,
    type: optString(spec, 'type', 'spec.type') ?? 'ClusterIP',
    clusterIPs,
    ports,
  };
  if (spec.selector !== undefined && spec.selector !== null) {
    svc.selector = labelsOf(spec, 'selector', 'spec.selector');
  }
  return svc;
}

function parseEndpointSlice(obj: JsonObject, name: string, namespace: string): EndpointSliceModel {
  const meta = element(obj.metadata, 'metadata');
  const labels = labelsOf(meta, 'labels', 'metadata.labels');
  const addressType = typeof obj.addressType === 'string' ? obj.addressType : 'IPv4';
  const endpoints: EndpointModel[] = optArray(obj, 'endpoints', 'endpoints').map((e, i) => {
    const field = `endpoints[${i}]`;
    const ep = element(e, field);
    // FQDN slices carry host names, not addresses; nothing to resolve an IP to.
    const addresses =
      addressType === 'FQDN'
        ? []
        : optArray(ep, 'addresses', `${field}.addresses`).map((a, j) => ipOf(a, `${field}.addresses[${j}]`));
    const conditions = optObject(ep, 'conditions', `${field}.conditions`) ?? {};
    const ready = conditions.ready;
    if (ready !== undefined && ready !== null && typeof ready !== 'boolean') {
      throw new FieldError(`${field}.conditions.ready`, `expected true or false, found ${describe(ready)}`);
    }
    // discovery.k8s.io/v1: a nil ready condition must be read as ready.
    const model: EndpointModel = { addresses, ready: ready !== false };
    const targetRef = optObject(ep, 'targetRef', `${field}.targetRef`);
    if (targetRef && targetRef.kind === 'Pod' && typeof targetRef.name === 'string') {
      const refNs = typeof targetRef.namespace === 'string' ? targetRef.namespace : namespace;
      model.pod = `${refNs}/${targetRef.name}`;
    }
    const nodeName = optString(ep, 'nodeName', `${field}.nodeName`);
    if (nodeName) model.nodeName = nodeName;
    return model;
  });
  const ports = optArray(obj, 'ports', 'ports').map((p, i) => {
    const field = `ports[${i}]`;
    const port = element(p, field);
    const out: { name?: string; port?: number; protocol: L4Protocol } = {
      protocol: protocolOf(port, `${field}.protocol`),
    };
    const pname = optString(port, 'name', `${field}.name`);
    if (pname) out.name = pname;
    if (port.port !== undefined && port.port !== null) out.port = portNumber(port.port, `${field}.port`);
    return out;
  });
  const slice: EndpointSliceModel = { namespace, name, addressType, endpoints, ports };
  const service = labels[SERVICE_NAME_LABEL];
  if (service) slice.service = service;
  return slice;
}

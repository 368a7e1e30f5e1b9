import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { FlowRecord } from '../../schema/flow-record.js';
import { type KubeObject, kubeList } from './generate.js';

/**
 * Writes test/fixtures/recipes/<name>/{cluster.json,cases.json,policy.yaml} from the published
 * NetworkPolicy examples below. Each policy is the example's YAML copied verbatim (parsed to JSON as
 * is); the pods and namespaces are the ones the example's walkthrough creates; every case quotes the
 * sentence of the source that states the expected outcome. Services in the walkthroughs (wget
 * http://web) are replaced by the pod IP and target port they lead to, because NetworkPolicies judge
 * the pod a packet reaches. Run: npx tsx test/reference/build-recipes.ts
 */

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/recipes');

const NODES = [
  { name: 'node-1', ip: '192.168.1.10', cidr: '10.244.1.0/24' },
  { name: 'node-2', ip: '192.168.1.11', cidr: '10.244.2.0/24' },
];

interface PodSpec {
  name: string;
  ns?: string;
  labels: Record<string, string>;
  ip: string;
  /** 0 or 1: index into NODES. */
  node?: number;
  ports?: { name?: string; containerPort: number; protocol?: string }[];
}

interface CaseSpec {
  name: string;
  from: string; // pod name (ns/name or name in default) or an IP address
  to: string;
  proto?: 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
  port?: number;
  allowed: boolean;
  egress?: boolean;
  ingress?: boolean;
  quote: string;
  /** Where the quote comes from when it is not the recipe itself. */
  quoteSource?: string;
}

interface Recipe {
  name: string;
  title: string;
  source: { repo: string; path: string; commit: string };
  /** Verbatim YAML of the policies, as published. */
  policyYaml: string;
  /** Namespace the walkthrough applies the policies in, when their metadata names none. */
  applyNamespace?: string;
  namespaces?: { name: string; labels?: Record<string, string> }[];
  pods: PodSpec[];
  cases: CaseSpec[];
  notes?: string[];
}

const WEBSITE = 'kubernetes/website';
const RECIPES = 'ahmetb/kubernetes-network-policy-recipes';
const CONCEPT = {
  repo: WEBSITE,
  path: 'content/en/docs/concepts/services-networking/network-policies.md',
  commit: 'a799505a5e8c8986908dd2c6e4204106bc6d129f',
};
const NODE_QUOTE =
  'IP blocks (exception: traffic to and from the node where a Pod is running is always allowed, regardless of the IP address of the Pod or the node)';
const UNSELECTED_QUOTE =
  'Other pods in the namespace that are not selected by any NetworkPolicy will continue to accept all traffic.';
const PORT_QUOTE =
  'NetworkPolicyPort.port: If present, only traffic on the specified protocol AND port will be matched. protocol: If not specified, this field defaults to TCP.';
const API_REF = 'NetworkPolicy API reference (networking.k8s.io/v1), NetworkPolicyPort';

const web = (ns = 'default', ip = '10.244.2.20'): PodSpec => ({
  name: 'web',
  ns,
  labels: { app: 'web' },
  ip,
  node: 1,
  ports: [{ containerPort: 80 }],
});
const testPod = (name: string, ns: string, ip: string, labels: Record<string, string> = {}): PodSpec => ({
  name,
  ns,
  labels: { run: name, ...labels },
  ip,
  node: 0,
});
const kubeDns: PodSpec = {
  name: 'coredns-5d78c9869d-abcde',
  ns: 'kube-system',
  labels: { 'k8s-app': 'kube-dns' },
  ip: '10.244.1.2',
  node: 0,
  ports: [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ],
};

const recipes: Recipe[] = [
  {
    name: 'k8s-docs-networkpolicy',
    title:
      'Network Policies concept page: the example test-network-policy (ipBlock with except, OR of peers)',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/networkpolicy.yaml',
      commit: '3842a2847339fe9ad1013653ef81c9aa0f77b639',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`,
    namespaces: [{ name: 'myproject', labels: { project: 'myproject' } }, { name: 'other' }],
    pods: [
      { name: 'db', labels: { role: 'db' }, ip: '10.244.2.10', node: 1, ports: [{ containerPort: 6379 }] },
      { name: 'frontend', labels: { role: 'frontend' }, ip: '10.244.1.11', node: 0 },
      { name: 'client', ns: 'myproject', labels: { app: 'client' }, ip: '10.244.1.12', node: 0 },
      { name: 'frontend', ns: 'other', labels: { role: 'frontend' }, ip: '10.244.1.13', node: 0 },
    ],
    cases: [
      {
        name: 'role=frontend in default to db:6379',
        from: 'frontend',
        to: 'db',
        port: 6379,
        allowed: true,
        quote:
          'allows connections to all pods in the "default" namespace with the label "role=db" on TCP port 6379 from: any pod in the "default" namespace with the label "role=frontend"',
      },
      {
        name: 'role=frontend in default to db on another port',
        from: 'frontend',
        to: 'db',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'allows connections to all pods in the "default" namespace with the label "role=db" on TCP port 6379',
      },
      {
        name: 'UDP 6379 is not TCP 6379',
        from: 'frontend',
        to: 'db',
        proto: 'UDP',
        port: 6379,
        allowed: false,
        ingress: false,
        quote: 'on TCP port 6379',
      },
      {
        name: 'any pod in a project=myproject namespace',
        from: 'myproject/client',
        to: 'db',
        port: 6379,
        allowed: true,
        quote: 'any pod in a namespace with the label "project=myproject"',
      },
      {
        name: 'role=frontend in another namespace is not in default',
        from: 'other/frontend',
        to: 'db',
        port: 6379,
        allowed: false,
        ingress: false,
        quote: 'any pod in the "default" namespace with the label "role=frontend"',
      },
      {
        name: '172.17.0.5 is in the block',
        from: '172.17.0.5',
        to: 'db',
        port: 6379,
        allowed: true,
        quote:
          'IP addresses in the ranges 172.17.0.0–172.17.0.255 and 172.17.2.0–172.17.255.255 (ie, all of 172.17.0.0/16 except 172.17.1.0/24)',
      },
      {
        name: '172.17.1.5 is in the except',
        from: '172.17.1.5',
        to: 'db',
        port: 6379,
        allowed: false,
        ingress: false,
        quote: 'all of 172.17.0.0/16 except 172.17.1.0/24',
      },
      {
        name: '172.17.200.1 is in the block',
        from: '172.17.200.1',
        to: 'db',
        port: 6379,
        allowed: true,
        quote: 'IP addresses in the ranges 172.17.0.0–172.17.0.255 and 172.17.2.0–172.17.255.255',
      },
      {
        name: 'db to 10.0.0.0/24 on TCP 5978',
        from: 'db',
        to: '10.0.0.42',
        port: 5978,
        allowed: true,
        quote:
          '(Egress rules) allows connections from any pod in the "default" namespace with the label "role=db" to CIDR 10.0.0.0/24 on TCP port 5978',
      },
      {
        name: 'db to 10.0.0.0/24 on another port',
        from: 'db',
        to: '10.0.0.42',
        port: 5979,
        allowed: false,
        egress: false,
        quote: 'to CIDR 10.0.0.0/24 on TCP port 5978',
      },
      {
        name: 'db to outside 10.0.0.0/24',
        from: 'db',
        to: '10.0.1.42',
        port: 5978,
        allowed: false,
        egress: false,
        quote: 'isolates "role=db" pods in the "default" namespace for both ingress and egress traffic',
      },
      {
        name: 'db to its own node',
        from: 'db',
        to: '192.168.1.11',
        port: 10250,
        allowed: true,
        egress: true,
        quote: NODE_QUOTE,
      },
      {
        name: 'its own node to db',
        from: '192.168.1.11',
        to: 'db',
        port: 8080,
        allowed: true,
        ingress: true,
        quote: NODE_QUOTE,
      },
      {
        name: 'the other node to db is an ordinary address',
        from: '192.168.1.10',
        to: 'db',
        port: 6379,
        allowed: false,
        ingress: false,
        quote:
          'isolates "role=db" pods in the "default" namespace for both ingress and egress traffic (if they weren\'t already isolated)',
      },
      {
        name: 'pods not selected accept everything',
        from: '172.17.1.5',
        to: 'frontend',
        port: 80,
        allowed: true,
        ingress: true,
        quote: UNSELECTED_QUOTE,
      },
    ],
  },
  {
    name: 'k8s-docs-default-deny-ingress',
    title: 'Network Policies concept page: Default deny all ingress traffic',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/network-policy-default-deny-ingress.yaml',
      commit: '5712187312b318c7223635333cee02d5e22cf8ae',
    },
    policyYaml: `---
{
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: {
    name: "default-deny-ingress",
  },
  spec: {
    podSelector: {},
    policyTypes: [
      "Ingress",
    ],
  },
}
`,
    applyNamespace: 'default',
    namespaces: [{ name: 'other' }],
    pods: [web(), testPod('client', 'default', '10.244.1.21'), testPod('client', 'other', '10.244.1.22')],
    cases: [
      {
        name: 'pod to pod in the namespace',
        from: 'client',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        egress: true,
        quote:
          'You can create a "default" isolation policy for a namespace by creating a NetworkPolicy that selects all pods but does not allow any ingress traffic to those pods.',
      },
      {
        name: 'from another namespace',
        from: 'other/client',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'selects all pods but does not allow any ingress traffic to those pods',
      },
      {
        name: 'from outside',
        from: '203.0.113.9',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'selects all pods but does not allow any ingress traffic to those pods',
      },
      {
        name: 'egress is not changed',
        from: 'web',
        to: '203.0.113.9',
        port: 443,
        allowed: true,
        egress: true,
        quote: 'This policy does not change the default egress isolation behavior.',
      },
      {
        name: 'pods in other namespaces are not isolated',
        from: 'client',
        to: 'other/client',
        port: 8080,
        allowed: true,
        quote:
          'By default, if no policies exist in a namespace, then all ingress and egress traffic is allowed to and from pods in that namespace.',
      },
      {
        name: 'own node still reaches the pod',
        from: '192.168.1.11',
        to: 'web',
        port: 80,
        allowed: true,
        quote: NODE_QUOTE,
      },
    ],
  },
  {
    name: 'k8s-docs-default-deny-all',
    title: 'Network Policies concept page: Default deny all ingress and all egress traffic',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/network-policy-default-deny-all.yaml',
      commit: '7a090ad7363dc8f01a2304c43a0fa3d27b25b540',
    },
    policyYaml: `---
{
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: {
    name: "default-deny-all",
  },
  spec: {
    podSelector: {},
    policyTypes: [
      "Ingress",
      "Egress",
    ],
  },
}
`,
    applyNamespace: 'default',
    namespaces: [{ name: 'other' }],
    pods: [web(), testPod('client', 'default', '10.244.1.21'), testPod('client', 'other', '10.244.1.22')],
    cases: [
      {
        name: 'pod to pod in the namespace',
        from: 'client',
        to: 'web',
        port: 80,
        allowed: false,
        egress: false,
        ingress: false,
        quote:
          "This ensures that even pods that aren't selected by any other NetworkPolicy will not be allowed ingress or egress traffic.",
      },
      {
        name: 'egress to outside',
        from: 'web',
        to: '93.184.216.34',
        port: 443,
        allowed: false,
        egress: false,
        quote: 'will not be allowed ingress or egress traffic',
      },
      {
        name: 'DNS egress too',
        from: 'client',
        to: '10.96.0.10',
        proto: 'UDP',
        port: 53,
        allowed: false,
        egress: false,
        quote: 'will not be allowed ingress or egress traffic',
      },
      {
        name: 'from another namespace: its egress is free, ingress here is not',
        from: 'other/client',
        to: 'web',
        port: 80,
        allowed: false,
        egress: true,
        ingress: false,
        quote:
          'For a network flow between two pods to be allowed, both the egress policy on the source pod and the ingress policy on the destination pod need to allow the traffic.',
      },
      {
        name: 'pod to its own node',
        from: 'client',
        to: '192.168.1.10',
        port: 10250,
        allowed: true,
        quote: NODE_QUOTE,
      },
      {
        name: 'pod to itself',
        from: 'client',
        to: 'client',
        port: 8080,
        allowed: true,
        egress: true,
        ingress: true,
        quote: 'Other pods that are allowed (exception: a pod cannot block access to itself)',
        quoteSource: CONCEPT.path,
      },
      {
        name: 'pod to the other node',
        from: 'client',
        to: '192.168.1.11',
        port: 10250,
        allowed: false,
        egress: false,
        quote: 'will not be allowed ingress or egress traffic',
      },
    ],
  },
  {
    name: 'k8s-docs-allow-egress-deny-ingress',
    title: 'Network Policies concept page: allow all egress, deny all ingress (egress: [{}], ingress: [])',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/network-policy-allow-all-egress-deny-all-ingress.yaml',
      commit: '187a7df48b4ebfb02d5c36cf1ac769adc7d134a1',
    },
    policyYaml: `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-deny-ingress
spec:
  podSelector: {} 
  policyTypes:
    - Egress
    - Ingress
  egress:
    - {}
  ingress: [] # Removing this line also works
`,
    applyNamespace: 'default',
    pods: [web(), testPod('client', 'default', '10.244.1.21')],
    cases: [
      {
        name: 'egress anywhere is allowed by rule 0',
        from: 'web',
        to: '93.184.216.34',
        port: 443,
        allowed: true,
        egress: true,
        quote:
          'API reference, NetworkPolicyEgressRule.to: If this field is empty or missing, this rule matches all destinations. ports: If this field is empty or missing, this rule matches all ports.',
        quoteSource: 'NetworkPolicy API reference (networking.k8s.io/v1), NetworkPolicyEgressRule',
      },
      {
        name: 'ingress from anywhere is denied',
        from: '93.184.216.34',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'You can create a "default" isolation policy for a namespace by creating a NetworkPolicy that selects all pods but does not allow any ingress traffic to those pods.',
        quoteSource: CONCEPT.path,
      },
      {
        name: 'pod to pod: egress allowed, ingress denied',
        from: 'client',
        to: 'web',
        port: 80,
        allowed: false,
        egress: true,
        ingress: false,
        quote:
          'If either the egress policy on the source, or the ingress policy on the destination denies the traffic, the traffic will be denied.',
        quoteSource: CONCEPT.path,
      },
    ],
  },
  {
    name: 'k8s-docs-endport',
    title: 'Network Policies concept page: Targeting a range of ports (endPort)',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/networkpolicy-multiport-egress.yaml',
      commit: '32b803661f9c2addc6a19ba048c6e49e3a360a59',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Egress
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 32000
      endPort: 32768
`,
    pods: [
      { name: 'db', labels: { role: 'db' }, ip: '10.244.2.10', node: 1, ports: [{ containerPort: 5432 }] },
    ],
    cases: [
      ...(
        [
          [32000, true],
          [32500, true],
          [32768, true],
          [31999, false],
          [32769, false],
        ] as [number, boolean][]
      ).map(
        ([port, ok]): CaseSpec => ({
          name: `db to 10.0.0.7:${port}`,
          from: 'db',
          to: '10.0.0.7',
          port,
          allowed: ok,
          egress: ok,
          quote:
            'The above rule will allow a Pod with label db on the namespace default to communicate with any IP within the range 10.0.0.0/24 if the target port is between the range 32000 and 32768.',
          quoteSource: CONCEPT.path,
        }),
      ),
      {
        name: 'db to outside 10.0.0.0/24 in range',
        from: 'db',
        to: '10.0.1.7',
        port: 32100,
        allowed: false,
        egress: false,
        quote:
          'to communicate with any IP within the range 10.0.0.0/24 if the target port is between the range 32000 and 32768',
        quoteSource: CONCEPT.path,
      },
      {
        name: 'UDP in range is not TCP',
        from: 'db',
        to: '10.0.0.7',
        proto: 'UDP',
        port: 32100,
        allowed: false,
        egress: false,
        quote: PORT_QUOTE,
        quoteSource: API_REF,
      },
    ],
  },
  {
    name: 'k8s-docs-declare-network-policy',
    title: 'Declare Network Policy task: limit access to nginx to pods with access=true',
    source: {
      repo: WEBSITE,
      path: 'content/en/examples/service/networking/nginx-policy.yaml',
      commit: '3389c10e6a8eb36cadbfe89cdb28acd00b020388',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: access-nginx
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: nginx
  ingress:
  - from:
    - podSelector:
        matchLabels:
          access: "true"
`,
    applyNamespace: 'default',
    notes: [
      'The task page says the policy selects app=nginx (the label kubectl create deployment sets) while the published YAML selects app.kubernetes.io/name=nginx; the nginx pod here carries both labels, as the walkthrough intends the policy to select it.',
    ],
    pods: [
      {
        name: 'nginx-701339712-e0qfq',
        labels: { app: 'nginx', 'app.kubernetes.io/name': 'nginx' },
        ip: '10.244.2.30',
        node: 1,
        ports: [{ containerPort: 80 }],
      },
      testPod('busybox', 'default', '10.244.1.31'),
      testPod('busybox-access', 'default', '10.244.1.32', { access: 'true' }),
    ],
    cases: [
      {
        name: 'busybox without the access label',
        from: 'busybox',
        to: 'nginx-701339712-e0qfq',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'When you attempt to access the nginx Service from a Pod without the correct labels, the request times out',
        quoteSource: 'content/en/docs/tasks/administer-cluster/declare-network-policy.md',
      },
      {
        name: 'busybox with access=true',
        from: 'busybox-access',
        to: 'nginx-701339712-e0qfq',
        port: 80,
        allowed: true,
        quote: 'You can create a Pod with the correct labels to see that the request is allowed',
        quoteSource: 'content/en/docs/tasks/administer-cluster/declare-network-policy.md',
      },
    ],
  },
  {
    name: '01-deny-all-traffic-to-an-application',
    title: 'DENY all traffic to an application',
    source: {
      repo: RECIPES,
      path: '01-deny-all-traffic-to-an-application.md',
      commit: '1c02611ed295ade35843db55b7167b100afb9a16',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
      env: prod
`,
    applyNamespace: 'default',
    pods: [
      { ...web(), labels: { app: 'web', env: 'prod' } },
      { name: 'web-dev', labels: { app: 'web', env: 'dev' }, ip: '10.244.2.21', node: 1 },
      testPod('test-1234', 'default', '10.244.1.40'),
    ],
    cases: [
      {
        name: 'test pod to web',
        from: 'test-1234',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'wget: download timed out ... Traffic dropped!',
      },
      {
        name: 'outside to web',
        from: '203.0.113.50',
        to: 'web',
        port: 80,
        allowed: false,
        quote:
          'This manifest file is missing the spec.ingress field. Therefore it is not allowing any traffic into the Pod.',
      },
      {
        name: 'app=web,env=dev is not selected',
        from: 'test-1234',
        to: 'web-dev',
        port: 80,
        allowed: true,
        quote: 'In the manifest above, we target Pods with app=web,env=prod labels to police the newtork.',
      },
      {
        name: 'web itself may still send (no egress isolation)',
        from: 'web',
        to: 'test-1234',
        port: 8080,
        allowed: true,
        egress: true,
        quote:
          'If no policyTypes are specified on a NetworkPolicy then by default Ingress will always be set and Egress will be set if the NetworkPolicy has any egress rules.',
        quoteSource: CONCEPT.path,
      },
    ],
  },
  {
    name: '02-limit-traffic-to-an-application',
    title: 'LIMIT traffic to an application',
    source: {
      repo: RECIPES,
      path: '02-limit-traffic-to-an-application.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: api
  ingress:
  - from:
      - podSelector:
          matchLabels:
            app: bookstore
`,
    applyNamespace: 'default',
    pods: [
      {
        name: 'apiserver',
        labels: { app: 'bookstore', role: 'api' },
        ip: '10.244.2.50',
        node: 1,
        ports: [{ containerPort: 80 }],
      },
      testPod('test-1', 'default', '10.244.1.51'),
      testPod('test-2', 'default', '10.244.1.52', { app: 'bookstore', role: 'frontend' }),
    ],
    cases: [
      {
        name: 'pod without app=bookstore',
        from: 'test-1',
        to: 'apiserver',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'Test the Network Policy is blocking the traffic, by running a Pod without the app=bookstore label ... Traffic is blocked!',
      },
      {
        name: 'pod with app=bookstore',
        from: 'test-2',
        to: 'apiserver',
        port: 80,
        allowed: true,
        ingress: true,
        quote:
          'Test the Network Policy is allowing the traffic, by running a Pod with the app=bookstore label ... Traffic is allowed.',
      },
    ],
  },
  {
    name: '02a-allow-all-traffic-to-an-application',
    title: 'ALLOW all traffic to an application (with web-deny-all also applied)',
    source: {
      repo: RECIPES,
      path: '02a-allow-all-traffic-to-an-application.md',
      commit: '5abbbf7207e536602e43345f084f879a0498fc37',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
      env: prod
`,
    applyNamespace: 'default',
    notes: ['web-deny-all is the policy of recipe 01, which this recipe says to apply as well.'],
    namespaces: [{ name: 'other' }],
    pods: [
      { ...web(), labels: { app: 'web', env: 'prod' } },
      testPod('test-1', 'default', '10.244.1.60'),
      testPod('test-2', 'other', '10.244.1.61'),
    ],
    cases: [
      {
        name: 'test pod to web',
        from: 'test-1',
        to: 'web',
        port: 80,
        allowed: true,
        quote:
          'This way you can validate that applying web-allow-all will make the web-deny-all void. ... Traffic is allowed.',
      },
      {
        name: 'pod in another namespace to web',
        from: 'other/test-2',
        to: 'web',
        port: 80,
        allowed: true,
        quote:
          'Empty ingress rule ({}) allows traffic from all pods in the current namespace, as well as other namespaces.',
      },
    ],
  },
  {
    name: '03-deny-all-non-whitelisted-traffic-in-the-namespace',
    title: 'DENY all non-whitelisted traffic in the current namespace (matchLabels: null)',
    source: {
      repo: RECIPES,
      path: '03-deny-all-non-whitelisted-traffic-in-the-namespace.md',
      commit: '29924ded6e8db62f985ce355407df9ea955a6e93',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all
  namespace: default
spec:
  podSelector:
    matchLabels:
`,
    notes: [
      'matchLabels is null in the published YAML (an empty key); kubectl would print podSelector: {}. Kept verbatim.',
    ],
    namespaces: [{ name: 'other' }],
    pods: [web(), testPod('client', 'default', '10.244.1.70'), testPod('client', 'other', '10.244.1.71')],
    cases: [
      {
        name: 'pod to pod in default',
        from: 'client',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'matchLabels: is empty, this means it will match all the pods. ... There are no ingress rules, effectively causing traffic to be dropped to the selected (all) pods.',
      },
      {
        name: 'from another namespace',
        from: 'other/client',
        to: 'client',
        port: 8080,
        allowed: false,
        ingress: false,
        quote: 'the policy will be enforced to ALL pods in this namspace.',
      },
      {
        name: 'egress from default is not isolated',
        from: 'client',
        to: 'other/client',
        port: 8080,
        allowed: true,
        egress: true,
        quote:
          'If no policyTypes are specified on a NetworkPolicy then by default Ingress will always be set and Egress will be set if the NetworkPolicy has any egress rules.',
        quoteSource: CONCEPT.path,
      },
    ],
  },
  {
    name: '04-deny-traffic-from-other-namespaces',
    title: 'DENY all traffic from other namespaces',
    source: {
      repo: RECIPES,
      path: '04-deny-traffic-from-other-namespaces.md',
      commit: '016e475e24bb532d9439c907b1a9ab3fbed6438e',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: secondary
  name: deny-from-other-namespaces
spec:
  podSelector:
    matchLabels:
  ingress:
  - from:
    - podSelector: {}
`,
    namespaces: [{ name: 'secondary' }],
    pods: [
      web('secondary'),
      testPod('test-1', 'default', '10.244.1.80'),
      testPod('test-2', 'secondary', '10.244.1.81'),
    ],
    cases: [
      {
        name: 'from default to web.secondary',
        from: 'test-1',
        to: 'secondary/web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'It blocks the traffic from default namespace!',
      },
      {
        name: 'from secondary to web.secondary',
        from: 'secondary/test-2',
        to: 'secondary/web',
        port: 80,
        allowed: true,
        quote: 'Any pod in secondary namespace should work fine',
      },
      {
        name: 'from outside',
        from: '203.0.113.80',
        to: 'secondary/web',
        port: 80,
        allowed: false,
        quote:
          'it allows traffic from ALL pods in the secondary namespace, as spec.ingress.from.podSelector is empty and therefore selects all pods.',
      },
    ],
  },
  {
    name: '05-allow-traffic-from-all-namespaces',
    title: 'ALLOW traffic to an application from all namespaces',
    source: {
      repo: RECIPES,
      path: '05-allow-traffic-from-all-namespaces.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: secondary
  name: web-allow-all-namespaces
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector: {}
`,
    namespaces: [{ name: 'secondary' }],
    pods: [
      web('secondary'),
      testPod('test-1', 'default', '10.244.1.90'),
      testPod('test-2', 'secondary', '10.244.1.91'),
    ],
    cases: [
      {
        name: 'from default',
        from: 'test-1',
        to: 'secondary/web',
        port: 80,
        allowed: true,
        quote: 'Query this web service from the default namespace: ... <!DOCTYPE html>',
      },
      {
        name: 'from secondary',
        from: 'secondary/test-2',
        to: 'secondary/web',
        port: 80,
        allowed: true,
        quote: 'Similarly, it also works if you query it from any pod deployed to secondary.',
      },
      {
        name: 'from outside the cluster',
        from: '203.0.113.90',
        to: 'secondary/web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'Selects all pods in all namespaces (namespaceSelector: {}).',
      },
    ],
  },
  {
    name: '06-allow-traffic-from-a-namespace',
    title: 'ALLOW all traffic from a namespace (namespaceSelector by label)',
    source: {
      repo: RECIPES,
      path: '06-allow-traffic-from-a-namespace.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-prod
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          purpose: production
`,
    applyNamespace: 'default',
    notes: [
      'Namespace labels as the walkthrough commands set them: dev purpose=testing, prod purpose=production.',
    ],
    namespaces: [
      { name: 'dev', labels: { purpose: 'testing' } },
      { name: 'prod', labels: { purpose: 'production' } },
    ],
    pods: [
      web(),
      testPod('test-1', 'dev', '10.244.1.100'),
      testPod('test-2', 'prod', '10.244.1.101'),
      testPod('test-3', 'default', '10.244.1.102'),
    ],
    cases: [
      {
        name: 'from dev',
        from: 'dev/test-1',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote: 'Query this web server from dev namespace, observe it is blocked',
      },
      {
        name: 'from prod',
        from: 'prod/test-2',
        to: 'web',
        port: 80,
        allowed: true,
        quote: 'Query it from prod namespace, observe it is allowed',
      },
      {
        name: 'from default itself',
        from: 'test-3',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'The following manifest restricts traffic to only pods in namespaces that has label purpose=production.',
      },
    ],
  },
  {
    name: '07-allow-traffic-from-some-pods-in-another-namespace',
    title: 'ALLOW traffic from some pods in another namespace (namespaceSelector AND podSelector)',
    source: {
      repo: RECIPES,
      path: '07-allow-traffic-from-some-pods-in-another-namespace.md',
      commit: '411ecb12401ec669420917acc19307cf8be2b2ef',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all-ns-monitoring
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
    - from:
      - namespaceSelector:     # chooses all pods in namespaces labelled with team=operations
          matchLabels:
            team: operations  
        podSelector:           # chooses pods with type=monitoring
          matchLabels:
            type: monitoring
`,
    namespaces: [{ name: 'other', labels: { team: 'operations' } }],
    pods: [
      web(),
      testPod('test-1', 'default', '10.244.1.110'),
      testPod('test-2', 'default', '10.244.1.111', { type: 'monitoring' }),
      testPod('test-3', 'other', '10.244.1.112'),
      testPod('test-4', 'other', '10.244.1.113', { type: 'monitoring' }),
    ],
    cases: [
      {
        name: 'default, no label',
        from: 'test-1',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'Query this web server from default namespace, without labelling the application type=monitoring, observe it is blocked',
      },
      {
        name: 'default, type=monitoring',
        from: 'test-2',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'Query this web server from default namespace, labelling the application type=monitoring, observe it is blocked',
      },
      {
        name: 'other, no label',
        from: 'other/test-3',
        to: 'web',
        port: 80,
        allowed: false,
        ingress: false,
        quote:
          'Query this web server from other namespace, without labelling the application type=monitoring, observe it is blocked',
      },
      {
        name: 'other, type=monitoring',
        from: 'other/test-4',
        to: 'web',
        port: 80,
        allowed: true,
        quote:
          'Query this web server from other namespace with labels team=operations, labelling the application type=monitoring, observe it is allowed',
      },
    ],
  },
  {
    name: '08-allow-external-traffic',
    title: 'ALLOW traffic from external clients',
    source: {
      repo: RECIPES,
      path: '08-allow-external-traffic.md',
      commit: '5d0477352f8d9b76ec38db1a6995121fb9233440',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-external
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
`,
    applyNamespace: 'default',
    namespaces: [{ name: 'other' }],
    pods: [web(), testPod('test-1', 'other', '10.244.1.120')],
    cases: [
      {
        name: 'from the Internet',
        from: '198.51.100.77',
        to: 'web',
        port: 80,
        allowed: true,
        ingress: true,
        quote:
          'Since it does not specify a particular podSelector or namespaceSelector, it allows traffic from all resources, including external.',
      },
      {
        name: 'from a pod on any port',
        from: 'other/test-1',
        to: 'web',
        port: 8443,
        allowed: true,
        quote:
          'The following manifest allows traffic from all sources (both internal from the cluster and external).',
      },
    ],
  },
  {
    name: '09-allow-traffic-only-to-a-port',
    title: 'ALLOW traffic only to a port of an application',
    source: {
      repo: RECIPES,
      path: '09-allow-traffic-only-to-a-port.md',
      commit: '11f5018e269359d9f900ae3b5c2e94c306623053',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-5000
spec:
  podSelector:
    matchLabels:
      app: apiserver
  ingress:
  - ports:
    - port: 5000
    from:
    - podSelector:
        matchLabels:
          role: monitoring
`,
    applyNamespace: 'default',
    notes: [
      'The walkthrough reaches the pod through a Service (8001->8000, 5001->5000); the flows here go to the pod ports.',
    ],
    pods: [
      {
        name: 'apiserver',
        labels: { app: 'apiserver' },
        ip: '10.244.2.130',
        node: 1,
        ports: [
          { name: 'http', containerPort: 8000 },
          { name: 'metrics', containerPort: 5000 },
        ],
      },
      testPod('test-1', 'default', '10.244.1.131'),
      testPod('test-2', 'default', '10.244.1.132', { role: 'monitoring' }),
    ],
    cases: [
      {
        name: 'no labels, 8000',
        from: 'test-1',
        to: 'apiserver',
        port: 8000,
        allowed: false,
        ingress: false,
        quote: 'Run a pod with no custom labels, observe the traffic to ports 5000 and 8000 are blocked',
      },
      {
        name: 'no labels, 5000',
        from: 'test-1',
        to: 'apiserver',
        port: 5000,
        allowed: false,
        ingress: false,
        quote: 'Run a pod with no custom labels, observe the traffic to ports 5000 and 8000 are blocked',
      },
      {
        name: 'role=monitoring, 5000',
        from: 'test-2',
        to: 'apiserver',
        port: 5000,
        allowed: true,
        quote:
          'Run a pod with role=monitoring label, observe the traffic to port 5000 is allowed, but port 8000 is still not accessible',
      },
      {
        name: 'role=monitoring, 8000',
        from: 'test-2',
        to: 'apiserver',
        port: 8000,
        allowed: false,
        ingress: false,
        quote:
          'Run a pod with role=monitoring label, observe the traffic to port 5000 is allowed, but port 8000 is still not accessible',
      },
    ],
  },
  {
    name: '09b-allow-traffic-only-to-a-named-port',
    title: 'ALLOW traffic only to a port of an application, named-port form',
    source: {
      repo: RECIPES,
      path: '09-allow-traffic-only-to-a-port.md',
      commit: '11f5018e269359d9f900ae3b5c2e94c306623053',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-5000
spec:
  podSelector:
    matchLabels:
      app: apiserver
  ingress:
  - ports:
    - port: api-port
`,
    applyNamespace: 'default',
    notes: [
      "The recipe gives the named-port form as a fragment (ingress: - ports: - port: api-port) with the pod spec containers[].ports[] {name: api-port, containerPort: 5000, protocol: TCP}; the fragment is placed in the recipe's api-allow-5000 policy.",
    ],
    pods: [
      {
        name: 'apiserver',
        labels: { app: 'apiserver' },
        ip: '10.244.2.140',
        node: 1,
        ports: [
          { name: 'api-port', containerPort: 5000, protocol: 'TCP' },
          { name: 'http', containerPort: 8000, protocol: 'TCP' },
        ],
      },
      testPod('test-1', 'default', '10.244.1.141'),
    ],
    cases: [
      {
        name: 'named port api-port is 5000',
        from: 'test-1',
        to: 'apiserver',
        port: 5000,
        allowed: true,
        quote: 'A port may be either a numerical or named port on a pod.',
      },
      {
        name: '8000 is not api-port',
        from: 'test-1',
        to: 'apiserver',
        port: 8000,
        allowed: false,
        ingress: false,
        quote: 'This NetworkPolicy lets you define ingress rules for specific ports of an application.',
      },
      {
        name: 'UDP 5000 is not the TCP api-port',
        from: 'test-1',
        to: 'apiserver',
        proto: 'UDP',
        port: 5000,
        allowed: false,
        ingress: false,
        quote: PORT_QUOTE,
        quoteSource: API_REF,
      },
    ],
  },
  {
    name: '10-allowing-traffic-with-multiple-selectors',
    title: 'ALLOW traffic from apps using multiple selectors (OR of podSelectors)',
    source: {
      repo: RECIPES,
      path: '10-allowing-traffic-with-multiple-selectors.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: redis-allow-services
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: bookstore
          role: search
    - podSelector:
        matchLabels:
          app: bookstore
          role: api
    - podSelector:
        matchLabels:
          app: inventory
          role: web
`,
    applyNamespace: 'default',
    pods: [
      {
        name: 'db',
        labels: { app: 'bookstore', role: 'db' },
        ip: '10.244.2.150',
        node: 1,
        ports: [{ containerPort: 6379 }],
      },
      testPod('search', 'default', '10.244.1.151', { app: 'bookstore', role: 'search' }),
      testPod('api', 'default', '10.244.1.152', { app: 'bookstore', role: 'api' }),
      testPod('catalog', 'default', '10.244.1.153', { app: 'inventory', role: 'web' }),
      testPod('other', 'default', '10.244.1.154', { app: 'other' }),
      testPod('mixed', 'default', '10.244.1.155', { app: 'inventory', role: 'search' }),
    ],
    cases: [
      {
        name: 'catalog (app=inventory,role=web)',
        from: 'catalog',
        to: 'db',
        port: 6379,
        allowed: true,
        quote: 'Run a pod that looks like the "catalog" microservice: ... open (works)',
      },
      {
        name: 'app=other',
        from: 'other',
        to: 'db',
        port: 6379,
        allowed: false,
        ingress: false,
        quote: 'Pods with labels not matching these microservices will not be able to connect',
      },
      {
        name: 'search',
        from: 'search',
        to: 'db',
        port: 6379,
        allowed: true,
        quote: 'The following NetworkPolicy will allow traffic from only these microservices.',
      },
      {
        name: 'api',
        from: 'api',
        to: 'db',
        port: 6379,
        allowed: true,
        quote: "Rules specified in spec.ingress.from are OR'ed.",
      },
      {
        name: 'app=inventory,role=search matches no single selector',
        from: 'mixed',
        to: 'db',
        port: 6379,
        allowed: false,
        ingress: false,
        quote: 'Pods with labels not matching these microservices will not be able to connect',
      },
    ],
  },
  {
    name: '11-deny-egress-traffic-from-an-application',
    title: 'DENY egress traffic from an application (egress: [])',
    source: {
      repo: RECIPES,
      path: '11-deny-egress-traffic-from-an-application.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress: []
`,
    applyNamespace: 'default',
    pods: [web(), kubeDns, testPod('test', 'default', '10.244.1.160', { app: 'foo' })],
    cases: [
      {
        name: 'foo to web',
        from: 'test',
        to: 'web',
        port: 80,
        allowed: false,
        egress: false,
        quote:
          'egress: [] empty rule set does not whitelist any traffic, therefore all egress (outbound) traffic is blocked.',
      },
      {
        name: 'foo to DNS',
        from: 'test',
        to: 'kube-system/coredns-5d78c9869d-abcde',
        proto: 'UDP',
        port: 53,
        allowed: false,
        egress: false,
        quote:
          'The pod is failing to resolve the the address, because the network policy is not allowing it to establish connections to the kube-dns Pods.',
      },
      {
        name: 'foo to the Internet',
        from: 'test',
        to: '93.184.216.34',
        port: 80,
        allowed: false,
        egress: false,
        quote: 'You want to prevent an application from establishing any connections to outside of the Pod.',
      },
      {
        name: 'ingress to foo unaffected',
        from: 'web',
        to: 'test',
        port: 8080,
        allowed: true,
        ingress: true,
        quote:
          'policyTypes: ["egress"] indicates that this policy enforces policies for the egress (outbound) traffic.',
      },
    ],
  },
  {
    name: '11b-deny-egress-allow-dns',
    title: 'DENY egress traffic from an application, allowing DNS (ports only, no to)',
    source: {
      repo: RECIPES,
      path: '11-deny-egress-traffic-from-an-application.md',
      commit: '125da2e1f05605092a56f2c8a1492fe9293f9ab2',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  # allow DNS resolution
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
`,
    applyNamespace: 'default',
    pods: [web(), kubeDns, testPod('test', 'default', '10.244.1.170', { app: 'foo' })],
    cases: [
      {
        name: 'DNS over UDP to kube-dns',
        from: 'test',
        to: 'kube-system/coredns-5d78c9869d-abcde',
        proto: 'UDP',
        port: 53,
        allowed: true,
        quote:
          'So we slightly modify the YAML file to allow all outbound traffic on DNS ports (53/udp and 53/tcp)',
      },
      {
        name: 'DNS over TCP to kube-dns',
        from: 'test',
        to: 'kube-system/coredns-5d78c9869d-abcde',
        proto: 'TCP',
        port: 53,
        allowed: true,
        quote: 'allow all outbound traffic on DNS ports (53/udp and 53/tcp)',
      },
      {
        name: 'port 53 anywhere',
        from: 'test',
        to: '8.8.8.8',
        proto: 'UDP',
        port: 53,
        allowed: true,
        quote:
          'Beware that the egress rule above allows Pod to connect not only kube-dns, but any host that serves traffic over port 53.',
      },
      {
        name: 'foo to web',
        from: 'test',
        to: 'web',
        port: 80,
        allowed: false,
        egress: false,
        quote:
          'Now when we try again, we actually see the IP addresses are resolved, but the traffic is blocked',
      },
      {
        name: 'foo to example.com',
        from: 'test',
        to: '93.184.216.34',
        port: 80,
        allowed: false,
        egress: false,
        quote: 'Connecting to www.example.com (93.184.216.34:80) wget: download timed out',
      },
      {
        name: 'ping',
        from: 'test',
        to: '74.125.129.101',
        proto: 'ICMP',
        allowed: false,
        egress: false,
        quote: 'ping does not work, hit ctrl+C to terminate',
      },
    ],
  },
  {
    name: '12-deny-all-non-whitelisted-traffic-from-the-namespace',
    title: 'DENY all non-whitelisted traffic from a namespace (default deny egress)',
    source: {
      repo: RECIPES,
      path: '12-deny-all-non-whitelisted-traffic-from-the-namespace.md',
      commit: '6f169a434b4d978e6ba43795813c16ef9c46b586',
    },
    policyYaml: `kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all-egress
  namespace: default
spec:
  policyTypes:
  - Egress
  podSelector: {}
  egress: []
`,
    namespaces: [{ name: 'other' }],
    pods: [
      web(),
      kubeDns,
      testPod('client', 'default', '10.244.1.180'),
      testPod('client', 'other', '10.244.1.181'),
    ],
    cases: [
      {
        name: 'DNS from default',
        from: 'client',
        to: 'kube-system/coredns-5d78c9869d-abcde',
        proto: 'UDP',
        port: 53,
        allowed: false,
        egress: false,
        quote:
          'This causes all traffic (including DNS resolution) to be dropped if it’s originating from Pods in default.',
      },
      {
        name: 'pod to pod in default',
        from: 'client',
        to: 'web',
        port: 80,
        allowed: false,
        egress: false,
        quote:
          'blocking all outgoing (egress) traffic from a namespace by default (including DNS resolution)',
      },
      {
        name: 'other namespace sends freely',
        from: 'other/client',
        to: 'web',
        port: 80,
        allowed: true,
        quote:
          'podSelector: is empty, this means it will match all the pods. Therefore, the policy will be enforced to ALL pods in the default namespace.',
      },
    ],
  },
  {
    name: '13-allow-egress-traffic-to-specific-pods',
    title: 'ALLOW egress traffic to specific pods (egress to a namespace AND pod, plus DNS)',
    source: {
      repo: 'ljluestc/kubernetes-network-policy-recipes',
      path: '13-allow-egress-traffic-to-specific-pods.md',
      commit: '45b1cd2ee01d483193635875722577d905dd0eff',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: frontend-allow-egress-to-backend
spec:
  podSelector:
    matchLabels:
      app: frontend
  policyTypes:
  - Egress
  egress:
  # Allow DNS resolution
  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  # Allow egress to backend-api pods
  - to:
    - podSelector:
        matchLabels:
          app: backend-api
    ports:
    - port: 80
      protocol: TCP
`,
    applyNamespace: 'default',
    notes: [
      'A fork of the ahmetb recipes that adds this egress recipe; the kube-system namespace carries kubernetes.io/metadata.name as the API server sets it.',
    ],
    pods: [
      kubeDns,
      {
        name: 'backend-api',
        labels: { app: 'backend-api', role: 'api' },
        ip: '10.244.2.190',
        node: 1,
        ports: [{ containerPort: 80 }],
      },
      {
        name: 'frontend',
        labels: { app: 'frontend', role: 'web' },
        ip: '10.244.1.191',
        node: 0,
        ports: [{ containerPort: 80 }],
      },
      {
        name: 'database',
        labels: { app: 'database' },
        ip: '10.244.2.192',
        node: 1,
        ports: [{ containerPort: 80 }],
      },
    ],
    cases: [
      {
        name: 'DNS to kube-dns',
        from: 'frontend',
        to: 'kube-system/coredns-5d78c9869d-abcde',
        proto: 'UDP',
        port: 53,
        allowed: true,
        quote: 'First egress rule: Allow DNS (UDP/TCP port 53 to kube-dns)',
      },
      {
        name: 'HTTP to backend-api',
        from: 'frontend',
        to: 'backend-api',
        port: 80,
        allowed: true,
        quote: 'Connection to backend-api is allowed!',
      },
      {
        name: 'HTTP to example.com',
        from: 'frontend',
        to: '93.184.216.34',
        port: 80,
        allowed: false,
        egress: false,
        quote: 'DNS resolution works, but connection is blocked!',
      },
      {
        name: 'HTTP to database',
        from: 'frontend',
        to: 'database',
        port: 80,
        allowed: false,
        egress: false,
        quote: 'Egress to non-whitelisted pods is blocked!',
      },
      {
        name: 'DNS to a public resolver',
        from: 'frontend',
        to: '8.8.8.8',
        proto: 'UDP',
        port: 53,
        allowed: false,
        egress: false,
        quote: 'Configure egress to kube-dns for DNS resolution',
      },
      {
        name: 'backend-api on port 8080',
        from: 'frontend',
        to: 'backend-api',
        port: 8080,
        allowed: false,
        egress: false,
        quote: 'Second egress rule: Allow HTTP (TCP port 80 to backend-api pods)',
      },
    ],
  },
  {
    name: '14-deny-external-egress-traffic',
    title: 'DENY external egress traffic (allow DNS, allow all pods in all namespaces)',
    source: {
      repo: RECIPES,
      path: '14-deny-external-egress-traffic.md',
      commit: '01b8390aaedca3bf0e3cc9468b6b9a5f562b7065',
    },
    policyYaml: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-external-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  - to:
    - namespaceSelector: {}
`,
    applyNamespace: 'default',
    namespaces: [{ name: 'other' }],
    pods: [
      web(),
      kubeDns,
      testPod('test', 'default', '10.244.1.200', { app: 'foo' }),
      { ...web('other', '10.244.2.201'), name: 'web2' },
    ],
    cases: [
      {
        name: 'foo to web',
        from: 'test',
        to: 'web',
        port: 80,
        allowed: true,
        quote: 'The pod with app=foo label is able to connect to web Service.',
      },
      {
        name: 'foo to a pod in another namespace',
        from: 'test',
        to: 'other/web2',
        port: 80,
        allowed: true,
        quote:
          'to: specifies an empty namespaceSelector. This will select all pods in all namespaces, so the outbound traffic to pods in the cluster will be allowed.',
      },
      {
        name: 'foo to example.com',
        from: 'test',
        to: '93.184.216.34',
        port: 80,
        allowed: false,
        egress: false,
        quote:
          'Connecting to www.example.com (93.184.216.34:80) wget: download timed out (connection is blocked)',
      },
      {
        name: 'DNS anywhere',
        from: 'test',
        to: '8.8.8.8',
        proto: 'UDP',
        port: 53,
        allowed: true,
        quote: 'this policy allows all outbound traffic on ports 53/udp and 53/tcp for DNS resolution.',
      },
      {
        name: 'foo to an outside address on 443',
        from: 'test',
        to: '151.101.1.69',
        port: 443,
        allowed: false,
        egress: false,
        quote: 'And since they are not listed, traffic to the IP addresses outside the cluster are denied.',
      },
    ],
  },
];

function build(recipe: Recipe): void {
  const policies = recipe.policyYaml
    .split(/^---$/m)
    .filter((doc) => doc.trim() && !/^\s*#[^\n]*$/.test(doc.trim()))
    .map((doc) => parse(doc) as KubeObject);
  const nsNames = new Set<string>(['default', 'kube-system']);
  for (const ns of recipe.namespaces ?? []) nsNames.add(ns.name);
  for (const p of recipe.pods) nsNames.add(p.ns ?? 'default');
  const nsLabels = new Map((recipe.namespaces ?? []).map((n) => [n.name, n.labels ?? {}]));
  const items: KubeObject[] = [...nsNames].map((name) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...(nsLabels.get(name) ?? {}) } },
    status: { phase: 'Active' },
  }));
  for (const n of NODES) {
    items.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name } },
      spec: { podCIDR: n.cidr, podCIDRs: [n.cidr] },
      status: {
        addresses: [
          { type: 'InternalIP', address: n.ip },
          { type: 'Hostname', address: n.name },
        ],
      },
    });
  }
  for (const p of recipe.pods) {
    const node = NODES[p.node ?? 0]!;
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.ns ?? 'default', labels: p.labels },
      spec: {
        nodeName: node.name,
        containers: [{ name: 'main', image: 'nginx', ...(p.ports ? { ports: p.ports } : {}) }],
      },
      status: { phase: 'Running', hostIP: node.ip, podIP: p.ip, podIPs: [{ ip: p.ip }] },
    });
  }
  const notes = [...(recipe.notes ?? [])];
  for (const policy of policies) {
    // kubectl output always names the namespace; the walkthrough applies unnamespaced manifests in it.
    if (!policy.metadata.namespace) {
      policy.metadata.namespace = recipe.applyNamespace ?? 'default';
      notes.push(
        `${policy.metadata.name}: the published manifest names no namespace; metadata.namespace is set to ${policy.metadata.namespace}, where the walkthrough applies it (kubectl output always carries it).`,
      );
    }
    items.push(policy);
  }

  const ipOf = (ref: string): string => {
    if (/^[0-9.]+$|:/.test(ref)) return ref;
    const [ns, name] = ref.includes('/') ? ref.split('/') : ['default', ref];
    const pod = recipe.pods.find((p) => (p.ns ?? 'default') === ns && p.name === name);
    if (!pod) throw new Error(`${recipe.name}: no pod ${ref}`);
    return pod.ip;
  };
  const cases = recipe.cases.map((c, i) => {
    const proto = c.proto ?? 'TCP';
    const start = 1_700_000_000_000 + i * 1000;
    const flow: FlowRecord = {
      v: 1,
      start,
      end: start + 10,
      proto,
      src: proto === 'ICMP' ? { ip: ipOf(c.from) } : { ip: ipOf(c.from), port: 40000 + i },
      dst: c.port === undefined ? { ip: ipOf(c.to) } : { ip: ipOf(c.to), port: c.port },
      packets: { fwd: 1, rev: 0 },
      bytes: { fwd: 60, rev: 0 },
      state: 'attempted',
      observer: { source: 'recipe' },
      id: `${recipe.name}:${i}`,
      ...(proto === 'ICMP' ? { icmp: { type: 8, code: 0 } } : {}),
    };
    const expect: Record<string, boolean> = { allowed: c.allowed };
    if (c.egress !== undefined) expect.egress = c.egress;
    if (c.ingress !== undefined) expect.ingress = c.ingress;
    return {
      name: c.name,
      from: c.from,
      to: c.to,
      flow,
      expect,
      quote: c.quote,
      quoteSource: c.quoteSource ?? `${recipe.source.repo}/${recipe.source.path}`,
    };
  });
  const dir = resolve(OUT, recipe.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'policy.yaml'), recipe.policyYaml);
  writeFileSync(resolve(dir, 'cluster.json'), `${JSON.stringify(kubeList(items), null, 2)}\n`);
  writeFileSync(
    resolve(dir, 'cases.json'),
    `${JSON.stringify({ title: recipe.title, source: recipe.source, notes, cases }, null, 2)}\n`,
  );
}

for (const recipe of recipes) build(recipe);
process.stdout.write(`wrote ${recipes.length} recipes to ${OUT}\n`);

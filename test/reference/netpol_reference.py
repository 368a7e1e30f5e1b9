#!/usr/bin/env python3
"""Independent reference evaluator for Kubernetes NetworkPolicy verdicts.

Written from the Kubernetes documentation only (concept page "Network Policies", the
networking.k8s.io/v1 API reference for NetworkPolicySpec / NetworkPolicyPeer / NetworkPolicyPort /
IPBlock, and the "Declare Network Policy" task page), never from the netpol-audit engine. It is
deliberately naive: every flow loops over every policy, nothing is cached or indexed, so that each
line can be checked against the spec by reading it.

usage: netpol_reference.py --cluster snapshot.json [--ipblock-matches-pods true|false]
           < flows.jsonl > verdicts.jsonl
       netpol_reference.py --batch jobs.json [--ipblock-matches-pods true|false]
           (jobs.json: [{"cluster": path, "flows": path, "out": path}, ...]; one process for many
           small clusters, because the test suite judges hundreds of them)

snapshot.json is what `kubectl get namespaces,pods,nodes,...,networkpolicies -A -o json` prints (a
List with items). Each input line is a FlowRecord; each output line is
  {"allowed": bool,
   "egress":  {"allowed": bool, "isolated": bool, "isolatedBy": ["ns/name", ...], "reason": str,
               "rules": [RuleRef, ...]},
   "ingress": {...}}
where rules lists every rule that allowed the flow in that direction, as
  {"policy": "ns/name", "direction": "egress"|"ingress", "rule": index}.
"""

import argparse
import ipaddress
import json
import sys

PROTO_BY_NUMBER = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


# --- the cluster -------------------------------------------------------------------------------


def load_cluster(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    items = doc["items"] if doc.get("kind") == "List" else [doc]
    cluster = {"namespaces": {}, "pods": [], "nodes": [], "policies": []}
    for item in items:
        kind = item.get("kind")
        meta = item.get("metadata") or {}
        if kind == "Namespace":
            labels = dict(meta.get("labels") or {})
            # The API server sets this label on every namespace; snapshots written by hand may lack it.
            labels.setdefault(NAMESPACE_NAME_LABEL, meta["name"])
            cluster["namespaces"][meta["name"]] = labels
        elif kind == "Pod":
            cluster["pods"].append(item)
        elif kind == "Node":
            cluster["nodes"].append(item)
        elif kind == "NetworkPolicy":
            cluster["policies"].append(item)
    return cluster


def pod_ips(pod):
    """The IPs a pod holds. Finished pods (Succeeded/Failed) hold none: their IP may be reused."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return []
    ips = [entry["ip"] for entry in (status.get("podIPs") or []) if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def is_host_network(pod):
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def same_ip(a, b):
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def find_pod(cluster, ip):
    """The pod that is a policy subject at this IP. hostNetwork pods are their node, never subjects."""
    for pod in cluster["pods"]:
        if is_host_network(pod):
            continue
        for pod_ip in pod_ips(pod):
            if same_ip(pod_ip, ip):
                return pod
    return None


def node_addresses(cluster, node_name):
    for node in cluster["nodes"]:
        if node["metadata"]["name"] == node_name:
            return [a["address"] for a in (node.get("status") or {}).get("addresses") or []
                    if a.get("type") in ("InternalIP", "ExternalIP")]
    return []


def is_own_node_address(cluster, pod, ip):
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        return False
    for address in node_addresses(cluster, node_name):
        try:
            if same_ip(address, ip):
                return True
        except ValueError:
            pass
    return False


def namespace_of(obj):
    return (obj.get("metadata") or {}).get("namespace") or "default"


def labels_of(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


# --- label selectors ---------------------------------------------------------------------------


def selector_matches(selector, labels):
    """Standard label selector semantics: matchLabels AND every matchExpression; empty selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            return False  # unknown operator: the API server rejects it, so it selects nothing
    return True


# --- policies ----------------------------------------------------------------------------------


def policy_types(policy):
    """API reference: without policyTypes, Ingress is always set and Egress if there are egress rules."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    result = {"Ingress"}
    if spec.get("egress"):
        result.add("Egress")
    return result


def policy_selects(policy, pod):
    return namespace_of(policy) == namespace_of(pod) and selector_matches(
        (policy.get("spec") or {}).get("podSelector"), labels_of(pod))


def ip_block_matches(block, ip):
    address = ipaddress.ip_address(ip)
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    if address.version != cidr.version or address not in cidr:
        return False
    for excluded in block.get("except") or []:
        network = ipaddress.ip_network(excluded, strict=False)
        if address.version == network.version and address in network:
            return False
    return True


def peer_matches(cluster, policy, peer, ip, options):
    """Does this from/to entry select the other end of the flow (at `ip`)?"""
    other_pod = find_pod(cluster, ip)
    if "ipBlock" in peer and peer["ipBlock"] is not None:
        if other_pod is not None and not options["ipblock_matches_pods"]:
            return False
        return ip_block_matches(peer["ipBlock"], ip)
    has_pod_selector = peer.get("podSelector") is not None
    has_ns_selector = peer.get("namespaceSelector") is not None
    if not has_pod_selector and not has_ns_selector:
        return False  # an empty peer is invalid in the API; it selects nothing here
    if other_pod is None:
        return False  # selectors select pods only; nodes and outside addresses are not pods
    other_ns = namespace_of(other_pod)
    if has_ns_selector:
        ns_labels = cluster["namespaces"].get(other_ns, {NAMESPACE_NAME_LABEL: other_ns})
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif other_ns != namespace_of(policy):
        return False  # podSelector alone selects pods in the policy's own namespace
    if has_pod_selector and not selector_matches(peer["podSelector"], labels_of(other_pod)):
        return False
    return True


def port_matches(cluster, entry, flow, dst_pod):
    protocol = entry.get("protocol") or "TCP"
    if protocol != flow["proto"]:
        return False
    port = entry.get("port")
    if port is None:
        return True  # "If this field is not provided, this matches all port names and numbers."
    flow_port = flow["port"]
    if flow_port is None:
        return False
    if isinstance(port, str):
        # A named port names a container port of the destination pod, on the same protocol.
        if dst_pod is None:
            return False
        for container in ((dst_pod.get("spec") or {}).get("containers") or []) + (
                (dst_pod.get("spec") or {}).get("initContainers") or []):
            for cport in container.get("ports") or []:
                if (cport.get("name") == port and (cport.get("protocol") or "TCP") == protocol
                        and cport.get("containerPort") == flow_port):
                    return True
        return False
    start = int(port)
    end = entry.get("endPort")
    if end is None:
        return flow_port == start
    return start <= flow_port <= int(end)


def rule_matches(cluster, policy, rule, peers_key, other_ip, flow, dst_pod, options):
    peers = rule.get(peers_key)
    if peers:  # empty or missing: every source/destination
        if not any(peer_matches(cluster, policy, peer, other_ip, options) for peer in peers):
            return False
    ports = rule.get("ports")
    if ports:  # empty or missing: every port
        if not any(port_matches(cluster, entry, flow, dst_pod) for entry in ports):
            return False
    return True


def judge_direction(cluster, flow, direction, options):
    """Egress is judged on the source pod, ingress on the destination pod."""
    if direction == "egress":
        subject_ip, other_ip, peers_key, type_name = flow["src"], flow["dst"], "to", "Egress"
    else:
        subject_ip, other_ip, peers_key, type_name = flow["dst"], flow["src"], "from", "Ingress"
    subject = find_pod(cluster, subject_ip)
    if subject is None:
        return {"allowed": True, "isolated": False, "isolatedBy": [], "reason": "not-a-pod", "rules": []}
    dst_pod = find_pod(cluster, flow["dst"])

    isolating = [p for p in cluster["policies"]
                 if policy_selects(p, subject) and type_name in policy_types(p)]
    isolated = len(isolating) > 0
    isolated_by = sorted(namespace_of(p) + "/" + p["metadata"]["name"] for p in isolating)
    verdict = {"isolated": isolated, "isolatedBy": isolated_by}

    # "traffic to and from the node where a Pod is running is always allowed"
    if is_own_node_address(cluster, subject, other_ip):
        return {**verdict, "allowed": True, "reason": "node-local", "rules": []}
    # "a pod cannot block access to itself"
    if same_ip(subject_ip, other_ip):
        return {**verdict, "allowed": True, "reason": "self", "rules": []}
    if not isolated:
        return {**verdict, "allowed": True, "reason": "not-isolated", "rules": []}

    rules = []
    for policy in isolating:
        name = namespace_of(policy) + "/" + policy["metadata"]["name"]
        for index, rule in enumerate((policy.get("spec") or {}).get(direction) or []):
            if rule_matches(cluster, policy, rule or {}, peers_key, other_ip, flow, dst_pod, options):
                rules.append({"policy": name, "direction": direction, "rule": index})
    reason = "rule-matched" if rules else "no-rule-matched"
    return {**verdict, "allowed": bool(rules), "reason": reason, "rules": rules}


def normalize_flow(record):
    proto = record["proto"]
    if isinstance(proto, int):
        proto = PROTO_BY_NUMBER.get(proto, proto)
    port = record["dst"].get("port")
    if proto not in ("TCP", "UDP", "SCTP"):
        port = None  # only these protocols have ports a NetworkPolicy can name
    return {"src": record["src"]["ip"], "dst": record["dst"]["ip"], "proto": proto, "port": port}


def judge(cluster, record, options):
    flow = normalize_flow(record)
    egress = judge_direction(cluster, flow, "egress", options)
    ingress = judge_direction(cluster, flow, "ingress", options)
    return {"allowed": egress["allowed"] and ingress["allowed"], "egress": egress, "ingress": ingress}


def parse_bool(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got " + repr(text))


def judge_stream(cluster, lines, out, options):
    for line in lines:
        if line.strip():
            out.write(json.dumps(judge(cluster, json.loads(line), options), sort_keys=True) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cluster")
    source.add_argument("--batch")
    parser.add_argument("--ipblock-matches-pods", type=parse_bool, default=True)
    args = parser.parse_args()
    options = {"ipblock_matches_pods": args.ipblock_matches_pods}
    if args.cluster:
        judge_stream(load_cluster(args.cluster), sys.stdin, sys.stdout, options)
        return
    with open(args.batch, encoding="utf-8") as f:
        jobs = json.load(f)
    for job in jobs:
        with open(job["flows"], encoding="utf-8") as flows, open(job["out"], "w", encoding="utf-8") as out:
            judge_stream(load_cluster(job["cluster"]), flows, out, options)


if __name__ == "__main__":
    main()

import type { PodModel } from './inventory/model.js';

/**
 * The workload a pod belongs to, for grouping violations: pods of one Deployment, DaemonSet or
 * StatefulSet come and go with new names, but the workload stays. Derived from the names the
 * controllers give pods (the snapshot format carries no ownerReferences we rely on).
 */
// Kubernetes generates name suffixes from an alphabet without vowels and look-alike digits.
const SAFE = '[bcdfghjklmnpqrstvwxz2456789]';
const REPLICASET_POD = new RegExp(`-${SAFE}{6,10}-${SAFE}{5}$`);

export function workloadOf(pod: Pick<PodModel, 'namespace' | 'name' | 'labels'>): string {
  const { name, labels } = pod;
  let base = name;
  const hash = labels['pod-template-hash'];
  if (hash && name.includes(`-${hash}-`)) {
    // Deployment → ReplicaSet <deploy>-<hash> → pod <deploy>-<hash>-<5 chars>
    base = name.slice(0, name.lastIndexOf(`-${hash}-`));
  } else if (labels['statefulset.kubernetes.io/pod-name'] === name && /-\d+$/.test(name)) {
    base = name.replace(/-\d+$/, '');
  } else if (
    (labels['controller-revision-hash'] || labels['job-name'] || labels['batch.kubernetes.io/job-name']) &&
    /-[a-z0-9]{5}$/.test(name)
  ) {
    base = name.replace(/-[a-z0-9]{5}$/, '');
  } else if (REPLICASET_POD.test(name)) {
    // A ReplicaSet pod whose pod-template-hash label was not kept.
    base = name.replace(REPLICASET_POD, '');
  }
  return `${pod.namespace}/${base}`;
}

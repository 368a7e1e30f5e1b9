import { describe, expect, it } from 'vitest';
import { parseSnapshot } from '../snapshot.js';
import { normalizeObject, resourceOf } from './resources.js';
import { snapshotYaml } from './snapshot.js';

describe('objects as the kube source hands them on', () => {
  it('list items get kind and apiVersion first, managedFields go, everything else stays', () => {
    const item = {
      metadata: {
        name: 'web-1',
        namespace: 'shop',
        managedFields: [{ manager: 'kubectl' }],
        labels: { a: 'b' },
      },
      spec: { nodeName: 'n1' },
    };
    const o = normalizeObject(item, resourceOf('Pod'));
    expect(Object.keys(o).slice(0, 2)).toEqual(['apiVersion', 'kind']);
    expect(o).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: 'shop', labels: { a: 'b' } },
      spec: { nodeName: 'n1' },
    });
  });

  it('keeps the kind and apiVersion a watch event or custom resource already carries', () => {
    const o = normalizeObject(
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'x' },
      },
      resourceOf('ClusterNetworkPolicy'),
    );
    expect(o.apiVersion).toBe('policy.networking.k8s.io/v1alpha2');
  });

  it('snapshot YAML keeps label values that look like booleans or numbers strings', () => {
    const pod = normalizeObject(
      {
        metadata: { name: 'p', namespace: 'default', labels: { flag: 'true', port: '8080', empty: '' } },
        status: { phase: 'Running', podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }] },
      },
      resourceOf('Pod'),
    );
    const text = snapshotYaml([pod]);
    const parsed = parseSnapshot([{ source: 'snap.yaml', text }]);
    expect(parsed.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(parsed.cluster.pods[0]!.labels).toEqual({ flag: 'true', port: '8080', empty: '' });
  });
});

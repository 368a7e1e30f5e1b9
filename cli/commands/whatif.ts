import { readFile } from 'node:fs/promises';
import { AuditError, formatIssue, type InputIssue, issue } from '../../lib/errors.js';
import { parseSince } from '../../lib/format.js';
import { CLUSTER_OPTIONS, CLUSTER_USAGE, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { AuditStore } from '../../processor/store/index.js';
import { evidenceFor, noDataMessage, parseFormat } from '../../report/index.js';
import {
  applyDrafts,
  type DraftSet,
  type PolicySet,
  parseDrafts,
  renderWhatIfMarkdown,
  renderWhatIfText,
  whatIf,
} from '../../whatif/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_NO_DATA, UsageError } from '../command.js';
import { reportIssues } from './check.js';

const USAGE = `usage: netpol-audit whatif --db FILE (--cluster SNAPSHOT | --kubeconfig FILE) [--apply DRAFT.yaml]...
       [--delete KIND/ns/name]... [--since 7d|DATE] [--until DATE] [--format text|json|markdown] [--fail-on-breakage]

Replays the traffic recorded in the store for the period under the policies in force (the cluster
given) with the drafts applied, judged by the same engine and options as check, and reports:
flows that would become denied (breakage, with the rules that allowed them), violations and denied
attempts that would become allowed, draft rules no recorded traffic would use, and draft rules
shadowed by precedence (docs/whatif.md). Drafts are NetworkPolicies, AdminNetworkPolicies,
BaselineAdminNetworkPolicies or ClusterNetworkPolicies, new or replacing one by kind and name.

options:
      --db FILE            the store (read only)
      --apply FILE         draft policies (YAML or JSON; repeatable)
      --delete ID          remove a policy in force: NetworkPolicy/NAMESPACE/NAME, or
                           AdminNetworkPolicy|BaselineAdminNetworkPolicy|ClusterNetworkPolicy/NAME
      --since D            start of the period: 7d (default), 30d, 12h, or a date; relative to the newest data
      --until D            end of the period (default: the newest data)
      --format F           text (default), json, markdown (a pull-request comment)
      --fail-on-breakage   exit 1 when any recorded flow would become denied
${CLUSTER_USAGE}

Exit status: 0 ok, 1 --fail-on-breakage and something breaks, 2 usage error, 3 fatal (an invalid
draft, an unknown --delete), 4 no data: the period holds no replayable traffic.`;

async function readDrafts(paths: string[]): Promise<DraftSet> {
  const sources = [];
  for (const path of paths) {
    try {
      sources.push({ source: path, text: await readFile(path, 'utf8') });
    } catch (err) {
      throw new AuditError('WHATIF_DRAFT_INVALID', `cannot read draft: ${(err as Error).message}`, {
        source: path,
      });
    }
  }
  return parseDrafts(sources);
}

function fatalIssues(what: string, issues: InputIssue[]): void {
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length === 0) return;
  throw new AuditError('WHATIF_DRAFT_INVALID', `${what}:\n  ${errors.map(formatIssue).join('\n  ')}`, {
    source: errors[0]!.source ?? errors[0]!.object ?? 'drafts',
  });
}

export const whatifCommand: Command = {
  path: ['whatif'],
  summary: 'replay recorded traffic under draft policies: what would break, what would loosen',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      ...CLUSTER_OPTIONS,
      db: { type: 'string' },
      apply: { type: 'string', multiple: true },
      delete: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string' },
      'fail-on-breakage': { type: 'boolean' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = asUsage(() => parseFormat(values.format, ['text', 'json', 'markdown'], 'text'));
    const options = clusterOptionsFrom(values);
    const drafts = values.apply?.length
      ? await readDrafts(values.apply)
      : { policies: { networkPolicies: [], clusterNetworkPolicies: [] }, ids: [], issues: [] };
    fatalIssues('the drafts cannot be read', drafts.issues);
    const store = AuditStore.open(values.db, { readonly: true });
    const cluster = await openCluster(options);
    try {
      reportIssues('whatif', cluster.issues);
      const c = cluster.view.at(Date.now()).inventory.cluster;
      const baseline: PolicySet = {
        networkPolicies: c.networkPolicies,
        clusterNetworkPolicies: c.clusterNetworkPolicies ?? [],
      };
      const applied = applyDrafts(baseline, drafts.policies, values.delete ?? []);
      const newest = store.latestDataTime() ?? 0;
      const until = values.until ? asUsage(() => parseSince(values.until!, newest)) : newest + 1;
      const since = asUsage(() => parseSince(values.since ?? '7d', newest));
      if (since >= until) throw new UsageError('the period is empty (--since must be before --until)');
      const edges = store.replay.edges(since, until);
      const days = store.replay.days(since, until);
      const result = whatIf({
        edges,
        baseline,
        applied,
        draftIds: drafts.ids,
        options: options.policy,
        since,
        until,
        notReplayable: store.replay.skipped(since, until),
        daysWithoutReplay: days.filter((d) => !d.replayable).map(({ day, flows }) => ({ day, flows })),
      });
      // A draft the engine rejects would silently judge as if absent: refuse instead.
      const draftOwners = new Set(drafts.ids.map((id) => id.slice(id.indexOf('/') + 1)));
      fatalIssues(
        'a draft is invalid',
        result.issues.filter(
          (i) => i.object !== undefined && draftOwners.has(i.object.replace(/^[A-Za-z]+\//, '')),
        ),
      );
      if (result.notReplayable.length > 0 || result.daysWithoutReplay.length > 0)
        process.stderr.write(
          `netpol-audit whatif: ${formatIssue(
            issue(
              'WHATIF_NOT_REPLAYABLE',
              'part of the period cannot be replayed (see the notes)',
              {
                source: values.db,
              },
              'warning',
            ),
          )}\n`,
        );
      if (edges.length === 0) {
        process.stderr.write(
          `whatif: ${noDataMessage(evidenceFor(store, since, until), 'what these drafts would change')}\n`,
        );
      }
      if (format === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (format === 'markdown') process.stdout.write(renderWhatIfMarkdown(result));
      else process.stdout.write(renderWhatIfText(result));
      if (edges.length === 0) return EXIT_NO_DATA;
      return values['fail-on-breakage'] && result.becomeDenied.length > 0 ? 1 : 0;
    } finally {
      store.close();
      await cluster.close();
    }
  },
};

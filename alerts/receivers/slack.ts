import type { AlertPayload } from '../../schema/alert.js';
import type { ReceiverConfig } from '../config.js';
import { post } from './http.js';
import type { AlertReceiver } from './index.js';

/**
 * A Slack-compatible incoming webhook: Block Kit, short lines that read on a phone. Names come from
 * the cluster, so Slack's control characters (& < >) are escaped: no link or mention can be forged.
 */

function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const ICON: Record<AlertPayload['status'], string> = {
  firing: ':rotating_light:',
  resolved: ':white_check_mark:',
};

function slackMessage(p: AlertPayload): Record<string, unknown> {
  const title =
    p.kind === 'report'
      ? `Compliance report ${p.key.src}: ${p.summary}`
      : p.kind === 'scan'
        ? `Scan from ${p.key.src}`
        : `${p.kind === 'violation' ? 'Violation' : 'Denied attempts'}: ${p.key.src} → ${p.key.dst}`;
  const port = p.key.proto
    ? ` ${p.key.proto}${p.key.port !== undefined && p.key.port >= 0 ? `/${p.key.port}` : ''}`
    : '';
  const lines = [
    `${ICON[p.status]} *${escapeSlack(p.status === 'resolved' ? `Resolved: ${title}` : title)}*${escapeSlack(port)}`,
    `${p.counts.flows} flow(s), ${p.counts.bytes} bytes · ${p.severity}`,
    `first ${p.startsAt} · last ${p.lastSeen}`,
  ];
  if (p.policies.length > 0) lines.push(`policies: ${escapeSlack(p.policies.join(', '))}`);
  const text = lines.join('\n');
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text } }];
  if (p.url) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${p.url}|evidence>` }] });
  return { text: escapeSlack(p.summary), blocks };
}

export function slackReceiver(c: ReceiverConfig): AlertReceiver {
  const url = c.urls[0]!;
  return {
    name: c.name,
    deliver: (p: AlertPayload) => post(url.reveal(), JSON.stringify(slackMessage(p)), {}, c.timeoutMs),
  };
}

import type { Command } from '../command.js';
import { alertsCommand } from './alerts.js';
import { auditCommand } from './audit.js';
import { checkCommand } from './check.js';
import { collectConntrackCommand } from './collect-conntrack.js';
import { collectLiveCommand } from './collect-live.js';
import { collectPcapCommand } from './collect-pcap.js';
import { explainCommand } from './explain.js';
import { processCommand } from './process.js';
import { reportCommand } from './report.js';
import { rulesCommand } from './rules.js';
import { snapshotCommand } from './snapshot.js';
import { suggestCommand } from './suggest.js';
import { verifyEvidenceCommand } from './verify-evidence.js';
import { violationsCommand } from './violations.js';
import { whatifCommand } from './whatif.js';

/** Every subcommand, in the order `netpol-audit --help` lists them. Each lives in its own module. */
export const commands: Command[] = [
  auditCommand,
  collectPcapCommand,
  collectLiveCommand,
  collectConntrackCommand,
  processCommand,
  checkCommand,
  explainCommand,
  violationsCommand,
  rulesCommand,
  reportCommand,
  verifyEvidenceCommand,
  whatifCommand,
  suggestCommand,
  alertsCommand,
  snapshotCommand,
];

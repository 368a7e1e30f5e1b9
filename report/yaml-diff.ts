import { stringify } from 'yaml';

/** A policy spec as YAML with sorted keys, so two versions differ only where the policy did. */
export function toYaml(value: unknown): string {
  return stringify(value, { sortMapEntries: true, lineWidth: 0 });
}

/**
 * A line diff (longest common subsequence), each line prefixed '-', '+' or ' ' as in a unified
 * diff; unchanged runs longer than `context` lines each side of a change are folded to '@@ ...'.
 */
export function lineDiff(before: string, after: string, context = 3): string[] {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  // Policies are small (tens of lines): the quadratic table is fine.
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      lines.push(` ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i]![j + 1]! > lcs[i + 1]![j]!)) lines.push(`+${b[j++]}`);
    else lines.push(`-${a[i++]}`);
  }
  const changed = lines.map((l) => l[0] !== ' ');
  const keep = lines.map((_, k) => {
    for (let d = -context; d <= context; d++) if (changed[k + d]) return true;
    return false;
  });
  const out: string[] = [];
  for (let k = 0; k < lines.length; k++) {
    if (keep[k]) out.push(lines[k]!);
    else if (out[out.length - 1] !== '@@ ...') out.push('@@ ...');
  }
  return out;
}

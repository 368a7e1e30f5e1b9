import { isJsonObject } from '../../lib/json.js';
import type { Labels } from '../inventory/model.js';

/**
 * Label selectors (metav1.LabelSelector): validated once at compile time, then matched against label
 * sets. matchLabels entries become `In` requirements with one value, as upstream converts them.
 */

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  key: string;
  op: SelectorOperator;
  values: readonly string[];
}

export interface Selector {
  requirements: readonly Requirement[];
  /** Canonical text (sorted), e.g. `{app=web,tier in (a,b),!legacy}`; equal selectors share it. */
  text: string;
}

export interface SelectorProblem {
  field: string;
  code: 'POLICY_INVALID_SELECTOR' | 'POLICY_INVALID_LABEL' | 'POLICY_INVALID_TYPE';
  message: string;
}

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A qualified name as label keys must be: `[prefix/]name`, name <= 63 chars, prefix a DNS subdomain. */
function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix.length === 0) return 'prefix part must not be empty';
    if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))
      return `prefix '${prefix}' must be a lowercase DNS subdomain of at most 253 characters`;
  }
  if (name.length === 0) return 'name part must not be empty';
  if (name.length > 63) return 'name part must be at most 63 characters';
  if (!NAME_PART.test(name))
    return `name part '${name}' must be alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric`;
  return undefined;
}

function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return 'must be at most 63 characters';
  if (value.length > 0 && !NAME_PART.test(value))
    return `'${value}' must be empty or alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric`;
  return undefined;
}

/** Parses and validates a raw LabelSelector; problems name fields relative to `path`. */
export function parseSelector(raw: unknown, path: string, problems: SelectorProblem[]): Selector | undefined {
  if (!isJsonObject(raw)) {
    problems.push({ field: path, code: 'POLICY_INVALID_TYPE', message: 'expected a label selector object' });
    return undefined;
  }
  const before = problems.length;
  const reqs: Requirement[] = [];
  const ml = raw.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (!isJsonObject(ml)) {
      problems.push({ field: `${path}.matchLabels`, code: 'POLICY_INVALID_TYPE', message: 'expected a map' });
    } else {
      for (const [k, v] of Object.entries(ml)) {
        const f = `${path}.matchLabels.${k}`;
        const kp = labelKeyProblem(k);
        if (kp)
          problems.push({ field: f, code: 'POLICY_INVALID_LABEL', message: `invalid label key: ${kp}` });
        if (typeof v !== 'string') {
          problems.push({ field: f, code: 'POLICY_INVALID_TYPE', message: 'label value must be a string' });
          continue;
        }
        const vp = labelValueProblem(v);
        if (vp)
          problems.push({ field: f, code: 'POLICY_INVALID_LABEL', message: `invalid label value: ${vp}` });
        reqs.push({ key: k, op: 'In', values: [v] });
      }
    }
  }
  const me = raw.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) {
      problems.push({
        field: `${path}.matchExpressions`,
        code: 'POLICY_INVALID_TYPE',
        message: 'expected a list',
      });
    } else {
      me.forEach((e, i) => {
        const f = `${path}.matchExpressions[${i}]`;
        if (!isJsonObject(e)) {
          problems.push({ field: f, code: 'POLICY_INVALID_TYPE', message: 'expected an object' });
          return;
        }
        const key = e.key;
        if (typeof key !== 'string') {
          problems.push({ field: `${f}.key`, code: 'POLICY_INVALID_TYPE', message: 'key must be a string' });
          return;
        }
        const kp = labelKeyProblem(key);
        if (kp)
          problems.push({
            field: `${f}.key`,
            code: 'POLICY_INVALID_LABEL',
            message: `invalid label key: ${kp}`,
          });
        const op = e.operator;
        const rawValues = e.values ?? [];
        if (!Array.isArray(rawValues) || rawValues.some((v) => typeof v !== 'string')) {
          problems.push({
            field: `${f}.values`,
            code: 'POLICY_INVALID_TYPE',
            message: 'values must be a list of strings',
          });
          return;
        }
        const values = rawValues as string[];
        if (op === 'In' || op === 'NotIn') {
          if (values.length === 0)
            problems.push({
              field: `${f}.values`,
              code: 'POLICY_INVALID_SELECTOR',
              message: `must be non-empty when operator is ${op}`,
            });
          values.forEach((v, j) => {
            const vp = labelValueProblem(v);
            if (vp)
              problems.push({
                field: `${f}.values[${j}]`,
                code: 'POLICY_INVALID_LABEL',
                message: `invalid label value: ${vp}`,
              });
          });
        } else if (op === 'Exists' || op === 'DoesNotExist') {
          if (values.length > 0)
            problems.push({
              field: `${f}.values`,
              code: 'POLICY_INVALID_SELECTOR',
              message: `must be empty when operator is ${op}`,
            });
        } else {
          problems.push({
            field: `${f}.operator`,
            code: 'POLICY_INVALID_SELECTOR',
            message: `unknown operator ${JSON.stringify(op)}: expected In, NotIn, Exists or DoesNotExist`,
          });
          return;
        }
        reqs.push({ key, op, values: [...new Set(values)].sort() });
      });
    }
  }
  if (problems.length > before) return undefined;
  return makeSelector(reqs);
}

function requirementText(r: Requirement): string {
  switch (r.op) {
    case 'In':
      return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${r.key} notin (${r.values.join(',')})`;
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
  }
}

function makeSelector(reqs: Requirement[]): Selector {
  const texts = [...new Set(reqs.map(requirementText))].sort();
  return { requirements: reqs, text: `{${texts.join(',')}}` };
}

export function selectorMatches(sel: Selector, labels: Labels): boolean {
  for (const r of sel.requirements) {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'In':
        if (!has || !r.values.includes(labels[r.key] as string)) return false;
        break;
      case 'NotIn':
        // A pod without the key matches NotIn (upstream labels.Selector semantics).
        if (has && r.values.includes(labels[r.key] as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The first requirement the labels fail, for explanations. */
export function firstFailure(sel: Selector, labels: Labels): string | undefined {
  for (const r of sel.requirements) {
    if (!selectorMatches({ requirements: [r], text: '' }, labels)) return requirementText(r);
  }
  return undefined;
}

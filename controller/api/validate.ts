/**
 * Validation of DockerPlugin documents against schema.ts, with messages written for people: each issue
 * names the field path, says what is expected, and tells the loader which YAML node to point at.
 * Defaults are not applied by ajv (a validated document stays exactly what the user wrote, so it can be
 * compared and round-tripped); withDefaults() applies them explicitly where a resolved spec is needed.
 *
 * The schema is compiled ahead of time (validator-gen.ts, `make crds`) into schema-validator.generated.ts:
 * only ajv's types are imported here, so no command pays for loading ajv and compiling the schema (~13 MB
 * resident and tens of milliseconds in a bare process; ~2.5 MB of an idle controller's memory).
 */
import type { ErrorObject } from 'ajv';
import { SpecError, type ErrorCode } from '../errors.ts';
import { NAMED_PATTERNS, SPEC_DEFAULTS, dockerPluginSchema } from './schema.ts';
import { validateDockerPlugin as validateSchema } from './schema-validator.generated.ts';
import type { DockerPlugin, DockerPluginSpec, ResolvedSpec } from './types.ts';

export type { ResolvedSpec } from './types.ts';

/** One step from a parent value to a child: a mapping key or a list index. */
export type PathSegment = string | number;

/**
 * Which part of the document an issue is about, relative to `segments`: the value at that path, the key
 * naming it (unknown fields), or the mapping that should contain it (missing fields, which have no node).
 */
export type IssueTarget = 'value' | 'key' | 'parent';

/**
 * One reason a document is invalid. `path` is `segments` formatted for people (`spec.settings.env.DEBUG`,
 * `spec.privileges[0].name`, '' for the whole document); `code` is stable across releases.
 */
export interface ValidationIssue {
  segments: PathSegment[];
  target: IssueTarget;
  path: string;
  message: string;
  code: ErrorCode;
}

/** The outcome of validateDocument: the typed document, or every issue found (never an empty list). */
export type ValidationResult = { ok: true; doc: DockerPlugin } | { ok: false; issues: ValidationIssue[] };

/** Stable codes of schema issues. */
export const VALIDATION_CODES = {
  unknownField: 'UNKNOWN_FIELD',
  missingField: 'MISSING_FIELD',
  invalidType: 'INVALID_TYPE',
  invalidValue: 'INVALID_VALUE',
  duplicateEntry: 'DUPLICATE_ENTRY',
  ruleViolation: 'RULE_VIOLATION',
} as const;

type SchemaNode = Readonly<Record<string, unknown>>;

const JUNCTORS = ['not', 'anyOf', 'allOf', 'oneOf'] as const;

// Kubernetes extensions are annotations to ajv (validator-gen.ts): the list-type ones are enforced by
// checkListTypes below; `x-plugctl-message` is the sentence shown when a node's junctor fails.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asNode(value: unknown): SchemaNode | undefined {
  return isRecord(value) ? value : undefined;
}

/** Formats path segments as a field path: `spec.settings.env.DEBUG`, `metadata.labels["app.io/x"]`. */
export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function pointerSegments(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const segments: PathSegment[] = [];
  let current = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(current)) {
      const index = Number(key);
      segments.push(index);
      current = current[index];
    } else {
      segments.push(key);
      current = isRecord(current) ? current[key] : undefined;
    }
  }
  return segments;
}

/** A short rendering of the offending value for "(got ...)". */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function formatAllowed(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9][\w./-]*$/.test(value) ? value : JSON.stringify(value);
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (true or false)',
  null: 'null',
};

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(
        Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The closest allowed field to a misspelt one, when it is close enough to be a likely typo. */
function suggest(unknown: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const distance =
      candidate.toLowerCase() === unknown.toLowerCase()
        ? 0
        : editDistance(unknown.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(1, Math.floor(unknown.length / 4)) ? best : undefined;
}

/** The message schema.ts gives for a failed junctor on this schema node. */
function ruleMessage(parentSchema: SchemaNode | undefined): string | undefined {
  const message = parentSchema?.['x-plugctl-message'];
  return typeof message === 'string' ? message : undefined;
}

function issue(
  segments: PathSegment[],
  target: IssueTarget,
  code: ErrorCode,
  message: string,
): ValidationIssue {
  return { segments, target, path: formatFieldPath(segments), message, code };
}

function fromAjvError(error: ErrorObject, root: unknown): ValidationIssue {
  const segments = pointerSegments(error.instancePath, root);
  const parent = asNode(error.parentSchema);
  const params = error.params as Record<string, unknown>;
  const got = describeValue(error.data);
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const allowed = Object.keys(asNode(parent?.['properties']) ?? {});
      const hint = suggest(name, allowed);
      const expected = allowed.length > 0 ? `; expected one of ${allowed.join(', ')}` : '';
      return issue(
        [...segments, name],
        'key',
        VALIDATION_CODES.unknownField,
        `unknown field "${name}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}${expected}`,
      );
    }
    case 'required':
      return issue(
        [...segments, String(params['missingProperty'])],
        'parent',
        VALIDATION_CODES.missingField,
        'required field is missing',
      );
    case 'type': {
      const types = String(params['type']).split(',');
      const expected = types.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
      const nullable = parent?.['nullable'] === true ? ' or null' : '';
      const quote =
        types.includes('string') && (typeof error.data === 'number' || typeof error.data === 'boolean')
          ? '; quote the value to make it a string'
          : '';
      return issue(
        segments,
        'value',
        VALIDATION_CODES.invalidType,
        `must be ${expected}${nullable} (got ${got})${quote}`,
      );
    }
    case 'enum': {
      const values = params['allowedValues'] as unknown[];
      const expected =
        values.length === 1 && values[0] === '' ? 'empty' : `one of ${values.map(formatAllowed).join(', ')}`;
      return issue(segments, 'value', VALIDATION_CODES.invalidValue, `must be ${expected} (got ${got})`);
    }
    case 'pattern': {
      const meaning = NAMED_PATTERNS.find((p) => p.pattern === params['pattern'])?.meaning;
      const expected = meaning ?? `a string matching ${String(params['pattern'])}`;
      return issue(segments, 'value', VALIDATION_CODES.invalidValue, `must be ${expected} (got ${got})`);
    }
    case 'minLength':
      return issue(
        segments,
        'value',
        VALIDATION_CODES.invalidValue,
        params['limit'] === 1
          ? 'must not be empty'
          : `must be at least ${String(params['limit'])} characters`,
      );
    case 'maxLength':
      return issue(
        segments,
        'value',
        VALIDATION_CODES.invalidValue,
        `must be at most ${String(params['limit'])} characters (got ${typeof error.data === 'string' ? error.data.length : got})`,
      );
    case 'minimum':
    case 'maximum': {
      const min = parent?.['minimum'];
      const max = parent?.['maximum'];
      const range =
        typeof min === 'number' && typeof max === 'number'
          ? `from ${min} to ${max}`
          : error.keyword === 'minimum'
            ? `at least ${String(min)}`
            : `at most ${String(max)}`;
      return issue(segments, 'value', VALIDATION_CODES.invalidValue, `must be ${range} (got ${got})`);
    }
    case 'not': {
      // A `not` over required fields forbids a combination: point at the first of them.
      const required = asNode(error.schema)?.['required'];
      const first = Array.isArray(required) && typeof required[0] === 'string' ? required[0] : undefined;
      return issue(
        first === undefined ? segments : [...segments, first],
        first === undefined ? 'value' : 'key',
        VALIDATION_CODES.ruleViolation,
        ruleMessage(parent) ?? 'this combination of fields is not allowed',
      );
    }
    case 'anyOf':
    case 'allOf':
    case 'oneOf':
      return issue(
        segments,
        'value',
        VALIDATION_CODES.ruleViolation,
        ruleMessage(parent) ?? error.message ?? 'invalid',
      );
    default:
      return issue(
        segments,
        'value',
        VALIDATION_CODES.invalidValue,
        error.message ?? `invalid value (${got})`,
      );
  }
}

function underJunctor(schemaPath: string): boolean {
  return JUNCTORS.some((j) => schemaPath.includes(`/${j}/`));
}

function isPrefix(prefix: string, path: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Keeps the errors a person can act on: errors inside a junctor's branches only explain why the branch
 * did not match, and a failed anyOf whose node has a more specific error (a bad operator, a wrong type)
 * is a consequence of that error, not news.
 */
function actionable(errors: readonly ErrorObject[]): ErrorObject[] {
  // An enum says everything about a value; a length bound beside it (there for the API server's CEL
  // cost estimate) would only repeat it.
  const enums = new Set(errors.filter((e) => e.keyword === 'enum').map((e) => e.instancePath));
  const kept = errors.filter(
    (e) => !underJunctor(e.schemaPath) && !(e.keyword === 'maxLength' && enums.has(e.instancePath)),
  );
  return kept.filter(
    (e) =>
      e.keyword === 'not' ||
      !(JUNCTORS as readonly string[]).includes(e.keyword) ||
      !kept.some(
        (other) =>
          other !== e &&
          !(JUNCTORS as readonly string[]).includes(other.keyword) &&
          isPrefix(e.instancePath, other.instancePath),
      ),
  );
}

/**
 * Enforces `x-kubernetes-list-type` as the API server does, so a file is rejected exactly when the same
 * document applied to a cluster would be: `set` lists hold distinct values, `map` lists distinct keys.
 */
function checkListTypes(
  schema: SchemaNode,
  data: unknown,
  segments: PathSegment[],
  out: ValidationIssue[],
): void {
  if (isRecord(data)) {
    const properties = asNode(schema['properties']) ?? {};
    const additional = asNode(schema['additionalProperties']);
    for (const [key, value] of Object.entries(data)) {
      const child = asNode(properties[key]) ?? additional;
      if (child !== undefined) checkListTypes(child, value, [...segments, key], out);
    }
    return;
  }
  if (!Array.isArray(data)) return;
  const listType = schema['x-kubernetes-list-type'];
  const mapKeys = schema['x-kubernetes-list-map-keys'];
  const seen = new Map<string, number>();
  data.forEach((item: unknown, index) => {
    let identity: string | undefined;
    let keySegment: string | undefined;
    if (listType === 'set') identity = JSON.stringify(item);
    else if (listType === 'map' && Array.isArray(mapKeys) && isRecord(item)) {
      const keys = mapKeys.map((k) => item[String(k)]);
      keySegment = mapKeys.length === 1 ? String(mapKeys[0]) : undefined;
      identity = JSON.stringify(keySegment === undefined ? keys : keys[0]);
    }
    if (identity === undefined) return;
    const first = seen.get(identity);
    if (first === undefined) {
      seen.set(identity, index);
      return;
    }
    const at = keySegment === undefined ? [...segments, index] : [...segments, index, keySegment];
    const what = keySegment === undefined ? `value ${identity}` : `${keySegment} ${identity}`;
    out.push(
      issue(
        at,
        'value',
        VALIDATION_CODES.duplicateEntry,
        `duplicate ${what}: already given at ${formatFieldPath([...segments, first])}`,
      ),
    );
  });
  const items = asNode(schema['items']);
  if (items !== undefined)
    data.forEach((item: unknown, i) => checkListTypes(items, item, [...segments, i], out));
}

/**
 * Validates a parsed document (plain JSON-like data) against the DockerPlugin schema. Does not parse
 * spec.remote (see reference.ts) and does not apply defaults. Issues are in schema order, not sorted.
 */
export function validateDocument(value: unknown): ValidationResult {
  const issues: ValidationIssue[] = [];
  if (!validateSchema(value)) {
    for (const error of actionable(validateSchema.errors ?? [])) issues.push(fromAjvError(error, value));
  }
  checkListTypes(dockerPluginSchema, value, [], issues);
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, doc: value as DockerPlugin };
}

/**
 * Like validateDocument, for callers without source positions (e.g. objects from the Kubernetes API):
 * returns the typed document or throws SpecError 'INVALID_DOCUMENT' listing every issue.
 */
export function assertDockerPlugin(value: unknown): DockerPlugin {
  const result = validateDocument(value);
  if (result.ok) return result.doc;
  const lines = result.issues.map((i) => `${i.path === '' ? '(document)' : i.path}: ${i.message}`);
  throw new SpecError('INVALID_DOCUMENT', `invalid DockerPlugin: ${lines.join('; ')}`);
}

/**
 * Returns a copy of a validated spec with every schema default applied (SPEC_DEFAULTS) and every optional
 * collection present and empty. Shares nothing with the input, so callers may mutate the result.
 */
export function withDefaults(spec: DockerPluginSpec): ResolvedSpec {
  const copy = structuredClone(spec);
  const resolved: ResolvedSpec = {
    ...(copy.remote !== undefined ? { remote: copy.remote } : {}),
    ...(copy.build !== undefined ? { build: copy.build } : {}),
    enabled: copy.enabled ?? SPEC_DEFAULTS.enabled,
    privileges: copy.privileges ?? [],
    grantAllPrivileges: copy.grantAllPrivileges ?? SPEC_DEFAULTS.grantAllPrivileges,
    settings: {
      env: copy.settings?.env ?? {},
      args: copy.settings?.args ?? [],
      mounts: copy.settings?.mounts ?? {},
      devices: copy.settings?.devices ?? {},
    },
    upgrade: { policy: copy.upgrade?.policy ?? SPEC_DEFAULTS.upgradePolicy },
    inUse: copy.inUse ?? SPEC_DEFAULTS.inUse,
    enableTimeoutSeconds: copy.enableTimeoutSeconds ?? SPEC_DEFAULTS.enableTimeoutSeconds,
    nodeSelector: {
      matchLabels: copy.nodeSelector?.matchLabels ?? {},
      matchExpressions: copy.nodeSelector?.matchExpressions ?? [],
    },
    dependsOn: copy.dependsOn ?? [],
    suspend: copy.suspend ?? SPEC_DEFAULTS.suspend,
    rollout: { maxUnavailable: copy.rollout?.maxUnavailable ?? SPEC_DEFAULTS.maxUnavailable },
    healthCheck: {
      enabled: copy.healthCheck?.enabled ?? SPEC_DEFAULTS.healthCheckEnabled,
      periodSeconds: copy.healthCheck?.periodSeconds ?? SPEC_DEFAULTS.healthPeriodSeconds,
      timeoutSeconds: copy.healthCheck?.timeoutSeconds ?? SPEC_DEFAULTS.healthTimeoutSeconds,
      failureThreshold: copy.healthCheck?.failureThreshold ?? SPEC_DEFAULTS.healthFailureThreshold,
    },
  };
  if (copy.alias !== undefined) resolved.alias = copy.alias;
  if (copy.pullSecretName !== undefined) resolved.pullSecretName = copy.pullSecretName;
  return resolved;
}

/**
 * The part of JSON Schema the RPC document (node/rpc-doc.ts) uses, checked: type (one or a list),
 * enum, const, pattern, minimum/maximum, minLength/maxLength, minItems/maxItems, items,
 * properties, required, additionalProperties, oneOf, and `$ref` into `#/components/schemas/`.
 * The server checks parameters with it and the tests check results with it, so the document the
 * user reads is the one the node enforces. Anything else in a schema is refused, not ignored.
 */
export interface Schema {
  readonly type?: SchemaType | readonly SchemaType[];
  readonly description?: string;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly items?: Schema;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | Schema;
  readonly oneOf?: readonly Schema[];
  readonly $ref?: string;
  readonly title?: string;
}

export type SchemaType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

const KNOWN = new Set(['type', 'description', 'enum', 'const', 'pattern', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'items', 'properties', 'required', 'additionalProperties', 'oneOf', '$ref', 'title']);

function typeOf(value: unknown): SchemaType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as SchemaType;
}

/**
 * What is wrong with `value` against `schema` (empty: nothing), each as "path: problem". `refs`
 * resolves `$ref`s (the document's components.schemas).
 */
export function validate(value: unknown, schema: Schema, refs: Readonly<Record<string, Schema>> = {}, path = '$'): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`${path}: schema keyword "${k}" is not supported`);
  if (schema.$ref !== undefined) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1];
    const target = name === undefined ? undefined : refs[name];
    if (!target) throw new Error(`${path}: unresolved $ref ${schema.$ref}`);
    return validate(value, target, refs, path);
  }
  if (schema.oneOf) {
    const matching = schema.oneOf.filter((s) => validate(value, s, refs, path).length === 0).length;
    return matching === 1 ? [] : [`${path}: matches ${matching} of the ${schema.oneOf.length} alternatives, not exactly one`];
  }
  const errors: string[] = [];
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const types: readonly SchemaType[] = typeof schema.type === 'string' ? [schema.type] : schema.type;
    const ok = types.includes(actual) || (actual === 'integer' && types.includes('number'));
    if (!ok) return [`${path}: must be ${types.join(' or ')}, got ${actual}`];
  }
  if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: must match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${path}: at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${path}: at most ${schema.maxLength} characters`);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) errors.push(`${path}: must be finite`);
    if (actual === 'integer' && !Number.isSafeInteger(value)) errors.push(`${path}: must be a safe integer`);
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: must be at least ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: must be at most ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${path}: at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${path}: at most ${schema.maxItems} items`);
    // One item's problems are enough to say what is wrong; the rest would only repeat it.
    if (schema.items && errors.length === 0) {
      for (let i = 0; i < value.length && errors.length === 0; i++) errors.push(...validate(value[i], schema.items, refs, `${path}[${i}]`));
    }
  }
  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!Object.hasOwn(obj, name)) errors.push(`${path}: "${name}" is required`);
    for (const [name, v] of Object.entries(obj)) {
      const sub = schema.properties?.[name];
      if (sub) errors.push(...validate(v, sub, refs, `${path}.${name}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unknown property "${name}"`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...validate(v, schema.additionalProperties, refs, `${path}.${name}`));
    }
  }
  return errors;
}

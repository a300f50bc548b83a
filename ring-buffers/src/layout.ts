/**
 * Layout tables: each structure that lives in shared memory is described once — field, byte
 * offset, type, unit, which side writes it — and both ends use accessors compiled from that one
 * description (CONVENTIONS.md, "Describe shared structures once").
 *
 * Integer fields are little-endian as on x86. `u64` fields read as a JavaScript number, exact
 * below 2^53 (sector numbers and counts: anything larger is beyond every disk and a validator
 * rejects it); `id64` fields read as a bigint so an opaque 64-bit id is echoed bit for bit.
 */

export type FieldType = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32' | 'u64' | 'id64';
export type Writer = 'front' | 'back' | 'guest' | 'server' | 'either' | 'toolstack' | 'hypervisor';

export interface ScalarField {
  readonly offset: number;
  readonly type: FieldType;
  readonly writer: Writer;
  readonly unit?: string;
  readonly doc?: string;
}

/** An array of `count` elements: bytes (`elem: 'u8'`) or nested structures. */
export interface ArrayField {
  readonly offset: number;
  readonly count: number;
  readonly elem: 'u8' | Layout<any>;
  readonly writer: Writer;
  readonly doc?: string;
}

export type FieldSpec = ScalarField | ArrayField;
export type FieldSpecs = Record<string, FieldSpec>;

type ScalarValue<T extends FieldType> = T extends 'id64' ? bigint : number;

/** The plain-object form of a layout's scalar fields (arrays are reached through offsets). */
export type Struct<F extends FieldSpecs> = {
  -readonly [K in keyof F as F[K] extends ScalarField ? K : never]: F[K] extends ScalarField
    ? ScalarValue<F[K]['type']>
    : never;
};

export interface Layout<F extends FieldSpecs> {
  readonly name: string;
  /** sizeof(struct), including any tail padding. */
  readonly size: number;
  readonly fields: F;
  /** Reads every scalar field at `base` into a new object. */
  read(view: DataView, base: number): Struct<F>;
  /** Writes the scalar fields present in `value` at `base`; absent fields are left alone. */
  write(view: DataView, base: number, value: Partial<Struct<F>>): void;
  /** Byte offset of field `name` (or of element `index` of an array field) from the start. */
  offsetOf(name: keyof F & string, index?: number): number;
}

const SIZES: Record<FieldType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8, id64: 8 };

function isArray(f: FieldSpec): f is ArrayField {
  return (f as ArrayField).count !== undefined;
}

function readExpr(type: FieldType, at: string): string {
  switch (type) {
    case 'u8': return `v.getUint8(${at})`;
    case 'i8': return `v.getInt8(${at})`;
    case 'u16': return `v.getUint16(${at}, true)`;
    case 'i16': return `v.getInt16(${at}, true)`;
    case 'u32': return `v.getUint32(${at}, true)`;
    case 'i32': return `v.getInt32(${at}, true)`;
    case 'u64': return `(v.getUint32(${at} + 4, true) * 4294967296 + v.getUint32(${at}, true))`;
    case 'id64': return `v.getBigUint64(${at}, true)`;
  }
}

function writeStmt(type: FieldType, at: string, val: string): string {
  switch (type) {
    case 'u8': return `v.setUint8(${at}, ${val});`;
    case 'i8': return `v.setInt8(${at}, ${val});`;
    case 'u16': return `v.setUint16(${at}, ${val}, true);`;
    case 'i16': return `v.setInt16(${at}, ${val}, true);`;
    case 'u32': return `v.setUint32(${at}, ${val}, true);`;
    case 'i32': return `v.setInt32(${at}, ${val}, true);`;
    case 'u64':
      return `{ const x = ${val}; v.setUint32(${at}, x >>> 0, true); v.setUint32(${at} + 4, Math.floor(x / 4294967296) >>> 0, true); }`;
    case 'id64': return `v.setBigUint64(${at}, BigInt.asUintN(64, ${val}), true);`;
  }
}

/**
 * Defines a layout. Checks that fields fit inside `size` and do not overlap (unions are
 * separate layouts over the same bytes), then compiles monomorphic read/write functions.
 */
export function defineLayout<const F extends FieldSpecs>(name: string, size: number, fields: F): Layout<F> {
  const spans: Array<[number, number, string]> = [];
  for (const [key, f] of Object.entries(fields)) {
    const bytes = isArray(f) ? f.count * (f.elem === 'u8' ? 1 : f.elem.size) : SIZES[f.type];
    if (f.offset < 0 || f.offset + bytes > size) {
      throw new Error(`layout ${name}: field ${key} (offset ${f.offset}, ${bytes} bytes) does not fit in ${size} bytes`);
    }
    spans.push([f.offset, f.offset + bytes, key]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) {
      throw new Error(`layout ${name}: fields ${spans[i - 1]![2]} and ${spans[i]![2]} overlap`);
    }
  }
  const scalars = Object.entries(fields).filter((e): e is [string, ScalarField] => !isArray(e[1]));
  const readBody =
    'return {' + scalars.map(([k, f]) => `${JSON.stringify(k)}: ${readExpr(f.type, `b + ${f.offset}`)}`).join(', ') + '};';
  const writeBody = scalars
    .map(([k, f]) => `if (o[${JSON.stringify(k)}] !== undefined) ${writeStmt(f.type, `b + ${f.offset}`, `o[${JSON.stringify(k)}]`)}`)
    .join('\n');
  const read = new Function('v', 'b', readBody) as Layout<F>['read'];
  const write = new Function('v', 'b', 'o', writeBody) as Layout<F>['write'];
  return {
    name,
    size,
    fields,
    read,
    write,
    offsetOf(key, index = 0) {
      const f = fields[key];
      if (!f) throw new Error(`layout ${name}: no field ${key}`);
      if (!isArray(f)) return f.offset;
      if (index < 0 || index >= f.count) throw new RangeError(`layout ${name}: ${key}[${index}] out of range`);
      return f.offset + index * (f.elem === 'u8' ? 1 : f.elem.size);
    },
  };
}

/** Rows for documentation and the ring lab: field, offset, size, type, writer, unit. */
export function describeLayout(layout: Layout<FieldSpecs>): Array<Record<string, string | number>> {
  return Object.entries(layout.fields).map(([field, f]) => {
    if (isArray(f)) {
      const elem = f.elem === 'u8' ? 'u8' : f.elem.name;
      const each = f.elem === 'u8' ? 1 : f.elem.size;
      return { field: `${field}[${f.count}]`, offset: f.offset, size: f.count * each, type: elem, writer: f.writer };
    }
    return { field, offset: f.offset, size: SIZES[f.type], type: f.type, writer: f.writer, ...(f.unit ? { unit: f.unit } : {}) };
  });
}

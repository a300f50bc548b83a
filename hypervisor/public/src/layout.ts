/**
 * Layout tables: every structure xenlab shares with Xen's ABI is described once as a table of
 * fields (offset, size, type, who writes it) and read and written through these accessors
 * (CONVENTIONS.md, "Describe shared structures once"). Little-endian, as on x86.
 */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'bytes';
/** Which side writes a field: the guest, Xen (the hypervisor), or both (e.g. seqlock-style). */
export type Writer = 'guest' | 'xen' | 'both' | 'in' | 'out';

export interface Field {
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType;
  readonly writer?: Writer;
  readonly unit?: string;
}

export interface Layout<F extends Record<string, Field> = Record<string, Field>> {
  readonly name: string;
  readonly size: number;
  readonly fields: F;
}

export function layout<const F extends Record<string, Field>>(name: string, size: number, fields: F): Layout<F> {
  for (const [k, f] of Object.entries(fields)) {
    if (f.offset + f.size > size) throw new Error(`layout ${name}: field ${k} overruns ${size} bytes`);
  }
  return { name, size, fields };
}

/** Reads a numeric field at `base` (u64 as a JS number; values above 2^53 lose precision). */
export function readField(view: DataView, base: number, f: Field): number {
  const o = base + f.offset;
  switch (f.type) {
    case 'u8':
      return view.getUint8(o);
    case 'i8':
      return view.getInt8(o);
    case 'u16':
      return view.getUint16(o, true);
    case 'i16':
      return view.getInt16(o, true);
    case 'u32':
      return view.getUint32(o, true);
    case 'i32':
      return view.getInt32(o, true);
    case 'u64':
      return Number(view.getBigUint64(o, true));
    case 'bytes':
      throw new TypeError('readField: byte-array fields have no numeric value');
  }
}

export function writeField(view: DataView, base: number, f: Field, value: number): void {
  const o = base + f.offset;
  switch (f.type) {
    case 'u8':
      return view.setUint8(o, value);
    case 'i8':
      return view.setInt8(o, value);
    case 'u16':
      return view.setUint16(o, value, true);
    case 'i16':
      return view.setInt16(o, value, true);
    case 'u32':
      return view.setUint32(o, value, true);
    case 'i32':
      return view.setInt32(o, value, true);
    case 'u64':
      return view.setBigUint64(o, BigInt(value), true);
    case 'bytes':
      throw new TypeError('writeField: byte-array fields have no numeric value');
  }
}

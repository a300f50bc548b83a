/**
 * The xl.cfg file syntax (xl.cfg(5), "Syntax"): a list of `key = value` settings, each ended by
 * a newline or `;`, where a value is a string (single or double quotes, backslash escapes), a
 * number, or a list `[ ... ]` of strings and numbers that may span lines and end with a comma.
 * `#` starts a comment to the end of the line. `key += value` appends to a list. Later settings
 * of the same key replace earlier ones, which is how `xl create cfg key=value` overrides work
 * (xl appends them to the file's text). Written from the man page, not from libxlu's lexer.
 */

/** A scalar in a config file, with the line it came from. */
export interface XlAtom {
  readonly kind: 'string' | 'number';
  /** The text after unquoting (numbers keep their spelling, e.g. `0x10`). */
  readonly text: string;
  readonly line: number;
}

export interface XlList {
  readonly kind: 'list';
  readonly items: readonly XlAtom[];
  readonly line: number;
}

export type XlValue = XlAtom | XlList;

export interface XlSetting {
  readonly key: string;
  readonly value: XlValue;
  /** Where the setting came from: a file line, or a command-line override. */
  readonly source: XlSource;
}

export type XlSource = { readonly file: string; readonly line: number } | { readonly override: string };

/** A configuration error a user can act on: where, which key, what was expected. */
export class XlCfgError extends Error {
  constructor(
    readonly where: XlSource,
    readonly key: string | undefined,
    readonly detail: string,
  ) {
    super(`${describeSource(where)}: ${key ? `${key}: ` : ''}${detail}`);
    this.name = 'XlCfgError';
  }

  /** The line a CLI prints, e.g. `xl create: /x/g.cfg line 7: disk = [...]: unknown access mode 'rx' (...)`. */
  format(command = 'xl create'): string {
    return `${command}: ${this.message}`;
  }
}

export function describeSource(s: XlSource): string {
  if ('override' in s) return `command-line override '${s.override}'`;
  return s.line > 0 ? `${s.file} line ${s.line}` : s.file;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** Tokenises and parses `text` into settings in file order. */
export function parseSettings(text: string, file: string): XlSetting[] {
  let i = 0;
  let line = 1;
  const settings: XlSetting[] = [];
  const err = (detail: string, key?: string, at = line): never => {
    throw new XlCfgError({ file, line: at }, key, detail);
  };

  const skipBlank = (newlines: boolean): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\r') i++;
      else if (c === '#') while (i < text.length && text[i] !== '\n') i++;
      else if (c === '\n' && newlines) {
        i++;
        line++;
      } else return;
    }
  };

  const readString = (key: string): XlAtom => {
    const quote = text[i]!;
    const start = line;
    i++;
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') return err(`unterminated string (missing closing ${quote})`, key, start);
      i++;
      if (c === quote) return { kind: 'string', text: out, line: start };
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i];
      if (e === undefined || e === '\n') return err('backslash at the end of a line inside a string', key, start);
      i++;
      if (e === 'x') {
        const hex = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i, i + 2));
        if (!hex) return err("'\\x' in a string must be followed by hex digits", key, start);
        out += String.fromCharCode(parseInt(hex[0], 16));
        i += hex[0].length;
      } else if (e >= '0' && e <= '7') {
        const oct = /^[0-7]{1,3}/.exec(text.slice(i - 1, i + 2))![0];
        out += String.fromCharCode(parseInt(oct, 8) & 0xff);
        i += oct.length - 1;
      } else {
        out += ESCAPES[e] ?? e;
      }
    }
  };

  const readAtom = (key: string): XlAtom => {
    const c = text[i];
    if (c === '"' || c === "'") return readString(key);
    const m = /^(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.])/.exec(text.slice(i));
    if (m) {
      i += m[0].length;
      return { kind: 'number', text: m[0], line };
    }
    const word = /^[^\s,;#\]]+/.exec(text.slice(i))?.[0];
    return err(
      word === undefined
        ? 'expected a value (a quoted string, a number or a [ list ])'
        : `expected a value, found '${word}' (strings must be quoted: '${word}')`,
      key,
    );
  };

  const readValue = (key: string): XlValue => {
    if (text[i] !== '[') return readAtom(key);
    const start = line;
    i++;
    const items: XlAtom[] = [];
    for (;;) {
      skipBlank(true);
      if (i >= text.length) return err("unterminated list (missing ']')", key, start);
      if (text[i] === ']') {
        i++;
        return { kind: 'list', items, line: start };
      }
      if (text[i] === '[') return err('lists cannot be nested', key);
      items.push(readAtom(key));
      skipBlank(true);
      if (text[i] === ',') i++;
      else if (text[i] !== ']') {
        if (i >= text.length) return err("unterminated list (missing ']')", key, start);
        return err(`expected ',' or ']' in the list, found '${text[i]}'`, key);
      }
    }
  };

  for (;;) {
    skipBlank(true);
    while (text[i] === ';') {
      i++;
      skipBlank(true);
    }
    if (i >= text.length) return settings;
    const keyMatch = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!keyMatch) err(`expected a setting name, found '${/^\S+/.exec(text.slice(i))![0]}'`);
    const key = keyMatch![0];
    const keyLine = line;
    i += key.length;
    skipBlank(false);
    let append = false;
    if (text.startsWith('+=', i)) {
      append = true;
      i += 2;
    } else if (text[i] === '=') i++;
    else err(`expected '=' after the setting name`, key);
    skipBlank(false);
    let value = readValue(key);
    if (append) {
      const prev = [...settings].reverse().find((s) => s.key === key)?.value;
      if (prev && prev.kind !== 'list') err(`'+=' needs a list, but ${key} is a single value`, key, keyLine);
      const add = value.kind === 'list' ? value.items : [value];
      value = { kind: 'list', items: [...(prev?.kind === 'list' ? prev.items : []), ...add], line: keyLine };
    }
    settings.push({ key, value, source: { file, line: keyLine } });
    skipBlank(false);
    if (i < text.length && text[i] !== '\n' && text[i] !== ';') {
      err(`unexpected '${/^\S+/.exec(text.slice(i))![0]}' after the value (one setting per line, or separate with ';')`, key);
    }
  }
}

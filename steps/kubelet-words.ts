/**
 * Word splitting as systemd does it for unit settings and for `$VAR` expansion.
 *
 * Rules implemented, as systemd splits unit settings and `$VAR` values:
 * - Words are separated by spaces, tabs and newlines. In unit settings a backslash at
 *   the end of a line joins it with the next one and acts as a separator.
 * - Single and double quotes group characters, also in the middle of a word
 *   (`a"b c"d` is one word `ab cd`), and are removed.
 * - In unit settings C escapes are decoded inside and outside quotes: `\n`, `\t`, `\s`,
 *   `\xHH`, `\NNN`, `\uXXXX`, `\\`, `\"`, `\'`, an escaped space and `\;`. Any other
 *   escape is invalid, because systemd rejects it too.
 * - When a variable's value is split for `$VAR`, a backslash takes the next character
 *   literally and an unterminated quote runs to the end of the value, because systemd
 *   splits with `EXTRACT_RELAX`.
 */

/** A word with the offsets of its text as written, quotes and escapes included. */
export interface Word {
  text: string;
  start: number;
  end: number;
}

export type SplitMode = 'unit' | 'variable';

/** The reason a unit setting cannot be split into words. */
export class WordSplitError extends Error {
  override name = 'WordSplitError';
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  s: ' ',
  '\\': '\\',
  '"': '"',
  "'": "'",
  ' ': ' ',
  ';': ';',
};
const HEX_ESCAPES: Record<string, number> = { x: 2, u: 4, U: 8 };

/** Splits `text` into words; throws WordSplitError on an invalid escape or open quote. */
export function splitWords(text: string, mode: SplitMode): Word[] {
  const words: Word[] = [];
  let i = 0;

  while (i < text.length) {
    if (WHITESPACE.has(text[i]) || isContinuation(text, i, mode)) {
      i += text[i] === '\\' ? 2 : 1;
      continue;
    }

    const start = i;
    let value = '';
    let quote: string | undefined;
    while (i < text.length) {
      const c = text[i];
      if (quote === undefined && (WHITESPACE.has(c) || isContinuation(text, i, mode))) {
        break;
      }
      if (c === quote) {
        quote = undefined;
        i++;
      } else if (quote === undefined && (c === '"' || c === "'")) {
        quote = c;
        i++;
      } else if (c === '\\') {
        const escape = decodeEscape(text, i, mode);
        value += escape.value;
        i = escape.next;
      } else {
        value += c;
        i++;
      }
    }

    if (quote !== undefined && mode === 'unit') {
      throw new WordSplitError(`the quote ${quote} opened at offset ${start} is never closed`);
    }
    words.push({ text: value, start, end: i });
  }

  return words;
}

function isContinuation(text: string, i: number, mode: SplitMode): boolean {
  return mode === 'unit' && text[i] === '\\' && text[i + 1] === '\n';
}

function decodeEscape(text: string, i: number, mode: SplitMode): { value: string; next: number } {
  const c = text[i + 1];
  if (c === undefined) {
    if (mode === 'variable') {
      return { value: '\\', next: i + 1 };
    }
    throw new WordSplitError('the text ends with a lone backslash');
  }
  if (mode === 'variable') {
    return { value: c, next: i + 2 };
  }

  if (c in SIMPLE_ESCAPES) {
    return { value: SIMPLE_ESCAPES[c], next: i + 2 };
  }
  if (c in HEX_ESCAPES) {
    const digits = text.slice(i + 2, i + 2 + HEX_ESCAPES[c]);
    if (digits.length === HEX_ESCAPES[c] && /^[0-9a-fA-F]+$/.test(digits)) {
      return { value: String.fromCodePoint(parseInt(digits, 16)), next: i + 2 + digits.length };
    }
  }
  const octal = text.slice(i + 1, i + 4);
  if (/^[0-3][0-7]{2}$/.test(octal)) {
    return { value: String.fromCharCode(parseInt(octal, 8)), next: i + 4 };
  }
  throw new WordSplitError(`invalid escape \\${c} at offset ${i}`);
}

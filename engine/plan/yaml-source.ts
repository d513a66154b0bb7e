// Parses YAML with js-yaml and records where every value and key starts, so
// that plan errors can name a line and column. js-yaml's `listener` option
// reports the open and close of each node it composes. The tree of those
// events mirrors the loaded value, so paths can be paired with offsets.
import yaml from 'js-yaml';

export type PathSegment = string | number;

export interface SourcePosition {
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
}

interface Entry {
  value: SourcePosition;
  key?: SourcePosition;
}

export class YamlSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: SourcePosition,
    /** How to fix it, when the general advice on YAML syntax does not fit. */
    readonly fix?: string,
  ) {
    super(message);
    this.name = 'YamlSyntaxError';
  }
}

interface EventNode {
  start: number;
  kind: string | null;
  result: unknown;
  children: EventNode[];
}

interface ListenerState {
  position: number;
  kind: string | null;
  result: unknown;
}

/** Formats a path as `spec.nodes[3].to`; the root is `(root)`. */
export function formatPath(path: readonly PathSegment[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? segment : `.${segment}`;
  }
  return text === '' ? '(root)' : text;
}

export class YamlSource {
  private readonly lineStarts: number[];
  private readonly entries = new Map<string, Entry>();
  readonly value: unknown;

  /**
   * Parses `text`. With `trackPositions: false` no positions are recorded
   * and every lookup returns 1:1. That saves memory on large valid plans, and
   * the loader parses again with positions when it finds an error.
   */
  constructor(
    readonly text: string,
    trackPositions = true,
  ) {
    this.lineStarts = trackPositions ? computeLineStarts(text) : [0];
    const stack: EventNode[] = [{ start: 0, kind: null, result: undefined, children: [] }];
    try {
      this.value = yaml.load(text, {
        schema: yaml.CORE_SCHEMA,
        listener: !trackPositions ? null : (event: string, state: ListenerState) => {
          if (event === 'open') {
            stack.push({ start: state.position, kind: null, result: undefined, children: [] });
            return;
          }
          const node = stack.pop()!;
          node.kind = state.kind;
          node.result = state.result;
          stack[stack.length - 1]!.children.push(node);
        },
      } as yaml.LoadOptions);
    } catch (error) {
      if (error instanceof yaml.YAMLException) {
        const mark = error.mark as { line: number; column: number } | undefined;
        // js-yaml reports a second document without a mark, so the position is found here.
        if (mark === undefined) {
          throw new YamlSyntaxError('the file holds more than one YAML document', secondDocumentStart(text), 'keep one RenamePlan per file; move the document that starts here into a plan file of its own');
        }
        throw new YamlSyntaxError(error.reason, { line: mark.line + 1, column: mark.column + 1 });
      }
      throw error;
    }
    const root = stack[0]!.children[0];
    if (root !== undefined) this.record([], root, undefined);
  }

  /** Returns where the value at `path` starts, or the nearest ancestor that exists. */
  valuePosition(path: readonly PathSegment[]): SourcePosition {
    return this.lookup(path, 'value');
  }

  /** Returns where the key of the mapping entry at `path` starts, falling back to its value. */
  keyPosition(path: readonly PathSegment[]): SourcePosition {
    return this.lookup(path, 'key');
  }

  private lookup(path: readonly PathSegment[], part: 'value' | 'key'): SourcePosition {
    for (let length = path.length; length >= 0; length--) {
      const entry = this.entries.get(formatPath(path.slice(0, length)));
      if (entry !== undefined) return (part === 'key' && length === path.length ? entry.key : undefined) ?? entry.value;
    }
    return { line: 1, column: 1 };
  }

  private record(path: PathSegment[], node: EventNode, key: SourcePosition | undefined): void {
    node = unwrap(node);
    // An empty value (`to:`) ends on a later line; point at its key instead.
    const entry: Entry = { value: node.result === null && key !== undefined ? key : this.positionAt(node.start) };
    if (key !== undefined) entry.key = key;
    this.entries.set(formatPath(path), entry);

    if (node.kind === 'sequence' && Array.isArray(node.result)) {
      const items = node.children;
      if (items.length !== node.result.length) return;
      items.forEach((child, index) => this.record([...path, index], child, undefined));
    } else if (node.kind === 'mapping') {
      const children = node.children;
      if (children.length % 2 !== 0) return;
      for (let i = 0; i < children.length; i += 2) {
        const keyNode = unwrap(children[i]!);
        if (typeof keyNode.result !== 'string' && typeof keyNode.result !== 'number') continue;
        this.record([...path, String(keyNode.result)], children[i + 1]!, this.positionAt(keyNode.start));
      }
    }
  }

  /** Converts an offset where js-yaml opened a node into the position of its first character. */
  private positionAt(offset: number): SourcePosition {
    offset = skipSeparation(this.text, offset);
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.lineStarts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - this.lineStarts[low]! + 1 };
  }
}

/** js-yaml composes some nodes twice (a flow collection inside a block one); keep the inner one. */
function unwrap(node: EventNode): EventNode {
  while (node.children.length === 1 && node.children[0]!.result === node.result && node.kind === node.children[0]!.kind) {
    node = node.children[0]!;
  }
  return node;
}

function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

/** Skips the spaces, line breaks and comments that js-yaml has not consumed yet when it opens a node. */
function skipSeparation(text: string, offset: number): number {
  while (offset < text.length) {
    const ch = text[offset];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      offset++;
    } else if (ch === '#') {
      while (offset < text.length && text[offset] !== '\n') offset++;
    } else {
      break;
    }
  }
  return offset;
}

/** Returns where the second document of a YAML stream starts: the first `---` or `...` line after content. */
function secondDocumentStart(text: string): SourcePosition {
  const lines = text.split(/\r?\n/);
  let content = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (/^(---|\.\.\.)(\s|$)/.test(line)) {
      if (content) return { line: index + 1, column: 1 };
      continue;
    }
    if (line.trim() !== '' && !line.trimStart().startsWith('#')) content = true;
  }
  return { line: 1, column: 1 };
}

import { expect } from 'chai';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Journal, readState, StateCorruptError } from '../../engine/state/journal.js';
import type { StateData, StateEvent } from '../../engine/state/model.js';

function emptyState(): StateData {
  return { format: 'kube-node-rename/state-v1', planName: 'p', fingerprint: 'sha256:x', plan: null, createdAt: '2026-01-01T00:00:00.000Z', runs: [], steps: {}, blocked: {} };
}

function stateDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'knr-journal-'));
}

const succeeded = (id: string): StateEvent => ({ type: 'step-succeeded', id, at: '2026-01-01T00:00:01.000Z', result: 'done' });
const running = (id: string): StateEvent => ({ type: 'step-running', id, runId: 'r1', attempt: 1, at: '2026-01-01T00:00:00.000Z' });

function journalFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('journal-'));
}

describe('state journal', () => {
  it('reads back what was appended', async () => {
    const dir = stateDir();
    const journal = Journal.create(dir, emptyState(), 10);
    await Promise.all([journal.append(running('a/x')), journal.append(succeeded('a/x')), journal.append(running('b/x'))]);
    const loaded = readState(dir)!;
    expect(loaded.entries).to.equal(3);
    expect(loaded.state.steps['a/x']!.status).to.equal('succeeded');
    expect(loaded.state.steps['b/x']!.status).to.equal('running');
    await journal.close();
  });

  it('ignores a torn last line', async () => {
    const dir = stateDir();
    const journal = Journal.create(dir, emptyState(), 10);
    await journal.append(running('a/x'));
    const file = path.join(dir, journalFiles(dir)[0]!);
    appendFileSync(file, '{"type":"step-succeeded","id":"a/');
    const loaded = readState(dir)!;
    expect(loaded.entries).to.equal(1);
    expect(loaded.state.steps['a/x']!.status).to.equal('running');
  });

  it('ignores a last line without its newline', () => {
    const dir = stateDir();
    Journal.create(dir, emptyState(), 10);
    appendFileSync(path.join(dir, 'journal-0.jsonl'), JSON.stringify(succeeded('a/x')));
    expect(readState(dir)!.state.steps['a/x']).to.equal(undefined);
  });

  it('cuts a torn line before appending', async () => {
    const dir = stateDir();
    const first = Journal.create(dir, emptyState(), 10);
    await first.append(running('a/x'));
    appendFileSync(path.join(dir, 'journal-0.jsonl'), '{"type":"step-su');
    const second = Journal.open(dir, 10);
    await second.append(succeeded('a/x'));
    const lines = readFileSync(path.join(dir, 'journal-0.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as StateEvent).type)).to.deep.equal(['step-running', 'step-succeeded']);
    expect(readState(dir)!.state.steps['a/x']!.status).to.equal('succeeded');
  });

  it('rejects damage before the last line', () => {
    const dir = stateDir();
    Journal.create(dir, emptyState(), 10);
    appendFileSync(path.join(dir, 'journal-0.jsonl'), `not json\n${JSON.stringify(running('a/x'))}\n`);
    expect(() => readState(dir)).to.throw(StateCorruptError, 'line 1 is not JSON');
  });

  it('compacts into a new generation', async () => {
    const dir = stateDir();
    const journal = Journal.create(dir, emptyState(), 10);
    for (let i = 0; i < 1500; i++) await journal.append(running(`n${i}/x`));
    expect(journalFiles(dir)).to.deep.equal(['journal-1.jsonl']);
    const loaded = readState(dir)!;
    expect(loaded.generation).to.equal(1);
    expect(loaded.entries).to.equal(500);
    expect(Object.keys(loaded.state.steps)).to.have.length(1500);
    await journal.close();
    expect(journalFiles(dir)).to.deep.equal(['journal-2.jsonl']);
    expect(readState(dir)!.entries).to.equal(0);
  });

  it('removes files a crash left behind', () => {
    const dir = stateDir();
    Journal.create(dir, emptyState(), 10);
    writeFileSync(path.join(dir, 'state.json.tmp'), '{"half');
    writeFileSync(path.join(dir, 'journal-7.jsonl'), JSON.stringify(succeeded('old/x')) + '\n');
    Journal.open(dir, 10);
    expect(existsSync(path.join(dir, 'state.json.tmp'))).to.equal(false);
    expect(journalFiles(dir)).to.deep.equal(['journal-0.jsonl']);
  });

  it('writes state files with mode 0600', async () => {
    const dir = stateDir();
    const journal = Journal.create(dir, emptyState(), 10);
    await journal.append(running('a/x'));
    const { statSync } = await import('node:fs');
    expect(statSync(path.join(dir, 'state.json')).mode & 0o777).to.equal(0o600);
    expect(statSync(path.join(dir, 'journal-0.jsonl')).mode & 0o777).to.equal(0o600);
  });

  it('replays an event twice to the same state', async () => {
    const dir = stateDir();
    const journal = Journal.create(dir, emptyState(), 10);
    const events: StateEvent[] = [
      { type: 'run-started', run: { runId: 'r1', startedAt: 't', pid: 1, host: 'h', user: 'u' } },
      running('a/x'),
      { type: 'attempt-failed', id: 'a/x', attempt: 1, at: 't', error: { message: 'm', transient: true } },
      succeeded('a/x'),
      { type: 'node-blocked', node: 'b', runId: 'r1', at: 't', reason: 'r' },
    ];
    for (const event of [...events, ...events]) await journal.append(event);
    const once = emptyState();
    const { applyEvent } = await import('../../engine/state/model.js');
    for (const event of events) applyEvent(once, event);
    expect(readState(dir)!.state).to.deep.equal(once);
  });
});

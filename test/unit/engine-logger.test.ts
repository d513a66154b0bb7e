import { expect } from 'chai';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../engine/logger.js';

describe('logger', () => {
  it('flushes run.log on close', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'knr-log-')), 'state', 'run.log');
    const consoleStream = new PassThrough();
    consoleStream.resume();
    const log = createLogger({ format: 'text', stream: consoleStream });
    log.addFile(file);
    // Enough lines that the file falls behind the logger before close.
    const child = log.logger.child({ run: 'r1', node: 'n0', step: 'prepare' });
    for (let i = 0; i < 20_000; i++) child.info('step started', { attempt: i });
    await log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).to.have.length(20_000);
    expect(JSON.parse(lines[19_999]!)).to.include({ message: 'step started', run: 'r1', node: 'n0', step: 'prepare', attempt: 19_999 });
    expect(statSync(file).mode & 0o777).to.equal(0o600);
  });

  it('writes readable text lines', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const log = createLogger({ format: 'text', stream });
    log.logger.child({ run: 'r1', node: 'n0', step: 'switch' }).warn('attempt failed, will retry', { attempt: 2 });
    await log.close();
    expect(text).to.match(/^\d\d:\d\d:\d\d warn \[r1 n0\/switch\] attempt failed, will retry {2}attempt=2\n$/);
  });
});

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('state that cannot be written', () => {
  it('stops apply before anything runs', async () => {
    // /dev/null is a file, so no folder can be made below it, not even by root.
    const stateDir = '/dev/null/kube-node-rename-state';
    const result = await run(process.execPath, [path.join(root, 'dist/engine/cli.js'), 'apply', path.join(root, 'plans/example.yaml'), '--state-dir', stateDir]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include(`error: cannot write the state in ${stateDir} (ENOTDIR`);
    expect(result.stderr).to.include('nothing ran');
    expect(result.stderr).to.not.match(/^\s+at /m);
  });
});

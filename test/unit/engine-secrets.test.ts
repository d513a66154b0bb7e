import { expect } from 'chai';
import { findSecretKey } from '../../engine/secrets.js';
import type { JsonValue } from '../../engine/step.js';

describe('secret guard on step outputs', () => {
  const rejected: [string, JsonValue, string][] = [
    ['a top-level name with a secret word', { bootstrapToken: 'abc' }, 'bootstrapToken'],
    ['a snake_case secret name', { private_key: 'x' }, 'private_key'],
    ['a bootstrap token value', { note: 'use abcdef.0123456789abcdef now' }, 'note'],
    ['a nested bootstrap token', { files: [{ text: 'token: abcdef.0123456789abcdef' }] }, 'files[0].text'],
    ['a PEM private key', { blob: '-----BEGIN EC PRIVATE KEY-----\nMHc...' }, 'blob'],
  ];
  for (const [name, outputs, path] of rejected) {
    it(`rejects ${name}`, () => {
      expect(findSecretKey(outputs)).to.equal(path);
    });
  }

  const accepted: [string, JsonValue][] = [
    ['a Node snapshot with taint keys and label names', { snapshot: { taints: [{ key: 'dedicated', effect: 'NoSchedule' }], labels: { 'example.com/api-key-rotation': 'on' } } }],
    ['a token id alone', { bootstrapId: 'abcdef' }],
    ['a certificate', { pem: '-----BEGIN CERTIFICATE-----\nMIIB...' }],
    ['no outputs', null],
  ];
  for (const [name, outputs] of accepted) {
    it(`accepts ${name}`, () => {
      expect(findSecretKey(outputs)).to.equal(undefined);
    });
  }
});

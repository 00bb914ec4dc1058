// The host's checks, as the SDK and its fakes apply them.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_ANNOTATIONS_BYTES, MAX_MESSAGE_BYTES, truncateMessage } from 'wasm-reconciler-sdk';
import { annotationsProblem, objectNameProblem, reasonProblem, utf8Length } from '../src/validate.js';

test('reasons must be UpperCamelCase within 128 characters', () => {
  for (const good of ['Created', 'A', 'Scaled2Replicas', 'A'.repeat(128)]) assert.equal(reasonProblem(good), null, good);
  for (const bad of ['', 'created', '1Created', 'Not Created', 'Not-Created', 'Créé', 'A'.repeat(129), undefined]) {
    assert.match(reasonProblem(bad), /invalid reason/, String(bad));
  }
});

test('annotation keys must be qualified names', () => {
  const one = (key) => annotationsProblem([[key, 'v']]);
  for (const good of ['a', 'example.com/trace-id', 'A_b.c-D', 'x/y', 'n'.repeat(63)]) assert.equal(one(good), null, good);
  for (const bad of ['', '/a', 'a/', 'Example.com/a', 'a b', '-a', 'a-', 'a/b/c', 'n'.repeat(64)]) {
    assert.match(one(bad), /key/, bad);
  }
});

test('duplicate keys and more than 256 KiB of annotations are refused', () => {
  assert.match(annotationsProblem([['a', '1'], ['a', '2']]), /duplicate key "a"/);
  assert.match(annotationsProblem([['a', 'v'.repeat(MAX_ANNOTATIONS_BYTES)]]), /more than/);
  assert.equal(annotationsProblem([['a', 'v'.repeat(MAX_ANNOTATIONS_BYTES - 1)]]), null);
  // Sizes are UTF-8 bytes, as the host counts them.
  assert.match(annotationsProblem([['a', 'é'.repeat(MAX_ANNOTATIONS_BYTES / 2)]]), /more than/);
});

test('long messages are cut on a character boundary', () => {
  const exact = 'x'.repeat(MAX_MESSAGE_BYTES);
  assert.equal(truncateMessage(exact), exact);
  const cut = truncateMessage('x'.repeat(MAX_MESSAGE_BYTES - 5) + 'ü'.repeat(10));
  assert.ok(utf8Length(cut) <= MAX_MESSAGE_BYTES);
  assert.ok(cut.endsWith('x ...'), cut.slice(-10));
  const emoji = truncateMessage('😀'.repeat(MAX_MESSAGE_BYTES));
  assert.equal(utf8Length(emoji), 255 * 4 + 4);
  assert.ok(emoji.endsWith('😀 ...'));
});

test('object names that would change the request path are refused', () => {
  for (const good of ['demo', 'my-app.v2', 'system:controller:x', 'a'.repeat(253)]) assert.equal(objectNameProblem(good), null, good);
  for (const bad of ['', '.', '..', 'a/b', 'x%2F', 'x?y', 'x#y', 'with space', 'é', 'a'.repeat(254)]) {
    assert.notEqual(objectNameProblem(bad), null, bad);
  }
});

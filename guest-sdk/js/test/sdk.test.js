// The SDK's types on their own: kinds, metadata, requests, responses, errors, the recorder and client wrappers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  ClientError,
  Context,
  EventError,
  Gvk,
  Metadata,
  MetadataError,
  Normal,
  ReconcileError,
  Request,
  Response,
  TerminalError,
  TransientError,
  Warning,
  context,
  defineReconciler,
  format,
} from 'wasm-reconciler-sdk';

const KIND = new Gvk('mygroup.example.com', 'v1alpha1', 'MyResource');

describe('Gvk', () => {
  test('api versions round-trip for named and core groups', () => {
    for (const gvk of [new Gvk('apps', 'v1', 'Deployment'), new Gvk('', 'v1', 'Secret')]) {
      assert.ok(Gvk.fromApiVersion(gvk.apiVersion, gvk.kind).equals(gvk));
    }
    assert.equal(new Gvk('', 'v1', 'ConfigMap').apiVersion, 'v1');
  });

  test('displays like apimachinery and serializes as the WIT record', () => {
    assert.equal(String(new Gvk('apps', 'v1', 'Deployment')), 'apps/v1, Kind=Deployment');
    assert.deepEqual(JSON.parse(JSON.stringify(new Gvk('', 'v1', 'Pod'))), { group: '', version: 'v1', kind: 'Pod' });
  });

  test('is frozen and checks its fields', () => {
    assert.ok(Object.isFrozen(KIND));
    assert.throws(() => new Gvk('apps', 1, 'Deployment'), TypeError);
    assert.ok(Gvk.from({ group: 'apps', version: 'v1', kind: 'Deployment' }).equals(new Gvk('apps', 'v1', 'Deployment')));
  });
});

describe('Metadata', () => {
  test('permissions follow the declarations', () => {
    const deployment = new Gvk('apps', 'v1', 'Deployment');
    const configMap = new Gvk('', 'v1', 'ConfigMap');
    const metadata = new Metadata('p', KIND).owns(deployment).reads(configMap);
    assert.ok(metadata.mayGet(KIND) && !metadata.mayApply(KIND));
    assert.ok(metadata.mayGet(deployment) && metadata.mayApply(deployment));
    assert.ok(metadata.mayGet(configMap) && !metadata.mayApply(configMap));
    assert.ok(!metadata.mayGet(new Gvk('', 'v1', 'Secret')));
    assert.deepEqual(metadata.toJSON(), {
      name: 'p',
      reconciles: { group: 'mygroup.example.com', version: 'v1alpha1', kind: 'MyResource' },
      owns: [{ group: 'apps', version: 'v1', kind: 'Deployment' }],
      reads: [{ group: '', version: 'v1', kind: 'ConfigMap' }],
    });
  });

  test('validate checks names like the API server and refuses empty kinds', () => {
    for (const good of ['a', 'myresource-js', 'my-resource-2', '0', 'a'.repeat(63)]) {
      assert.doesNotThrow(() => new Metadata(good, KIND).validate(), good);
    }
    for (const bad of ['', '-a', 'a-', 'My', 'my_resource', 'my.resource', 'a'.repeat(64)]) {
      assert.throws(() => new Metadata(bad, KIND).validate(), MetadataError, bad);
    }
    assert.throws(() => new Metadata('ok', KIND).owns(new Gvk('apps', '', 'Deployment')).validate(), /empty version or kind/);
  });
});

describe('Request', () => {
  test('accessors read the metadata', () => {
    const request = Request.fromJson(
      '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","uid":"u-1","resourceVersion":"7","generation":2,' +
        '"labels":{"x":"y"},"deletionTimestamp":"2024-01-01T00:00:00Z"}}',
    );
    assert.equal(request.name, 'a');
    assert.equal(request.namespace, null);
    assert.equal(request.generation, 2);
    assert.equal(request.uid, 'u-1');
    assert.equal(request.resourceVersion, '7');
    assert.deepEqual(request.labels, { x: 'y' });
    assert.deepEqual(request.annotations, {});
    assert.ok(request.gvk.equals(new Gvk('apps', 'v1', 'Deployment')));
    assert.ok(request.isBeingDeleted);
  });

  test('objects without a name are terminal errors', () => {
    for (const json of ['not json', '[]', 'null', '{"metadata":{}}', '{"metadata":{"name":1}}']) {
      assert.throws(() => Request.fromJson(json), (e) => e instanceof TerminalError, json);
    }
  });
});

describe('Response', () => {
  test('delays are rounded up to whole milliseconds', () => {
    assert.equal(Response.requeueAfter(2000).requeueAfterMs, 2000);
    assert.equal(Response.requeueAfter(1.5).requeueAfterMs, 2);
    assert.equal(Response.requeueAfter(0).requeueAfterMs, 0);
    assert.equal(Response.awaitChange().requeueAfterMs, null);
  });

  test('nonsense delays are refused', () => {
    for (const bad of [-1, NaN, Infinity, '5', 2 ** 60]) {
      assert.throws(() => Response.requeueAfter(bad), RangeError, String(bad));
    }
  });
});

describe('errors', () => {
  test('client errors map to the documented kinds', () => {
    const kind = (e) => ReconcileError.from(e).kind;
    assert.equal(kind(ClientError.unavailable('down')), 'transient');
    assert.equal(kind(ClientError.api(409, 'conflict')), 'transient');
    assert.equal(kind(ClientError.forbidden('no')), 'terminal');
    assert.equal(kind(ClientError.invalid('bad')), 'terminal');
    assert.equal(kind(ClientError.decode('bad')), 'terminal');
    assert.equal(kind(new EventError('invalid-reason', 'x')), 'terminal');
    assert.equal(kind(new MetadataError('x')), 'terminal');
    assert.equal(kind(new TypeError('x is undefined')), 'transient');
    assert.equal(kind('a string'), 'transient');
  });

  test('messages say what failed', () => {
    assert.equal(ClientError.api(409, 'conflict').message, 'API server refused the request (409): conflict');
    assert.ok(ClientError.api(409, 'conflict').isConflict);
    assert.equal(ReconcileError.from(new TypeError('boom')).message, 'TypeError: boom');
    assert.equal(ReconcileError.from({ a: 1 }).message, 'uncaught {"a":1}');
  });

  test('context prefixes the message and keeps the kind', () => {
    assert.throws(
      () => context('get deployment demo', () => { throw ClientError.unavailable('timed out'); }),
      (e) => e instanceof TransientError && e.message === 'get deployment demo: API server unavailable: timed out',
    );
    assert.equal(context('x', () => 42), 42);
    const terminal = ReconcileError.terminal('bad').context('check');
    assert.ok(terminal.isTerminal && terminal instanceof TerminalError && terminal.message === 'check: bad');
  });
});

describe('Context', () => {
  function recording() {
    const calls = [];
    const ctx = new Context({
      events: { record: (event) => calls.push(['event', event]) },
      client: {
        get: (kind, name) => (calls.push(['get', String(kind), name]), name === 'there' ? '{"a":1}' : null),
        apply: (json) => (calls.push(['apply', json]), json),
        patchStatus: (json) => (calls.push(['patchStatus', json]), 'not json'),
      },
      log: { log: (level, message) => calls.push(['log', level, message]) },
    });
    return { ctx, calls };
  }

  test('the recorder formats and passes annotations in every form', () => {
    const { ctx, calls } = recording();
    ctx.recorder.event(Normal, 'Synced', 'done');
    ctx.recorder.eventf(Warning, 'Failed', '%s failed %d times', 'demo', 2);
    ctx.recorder.annotatedEventf({ 'example.com/a': 1 }, Normal, 'A', 'x');
    ctx.recorder.annotatedEvent(new Map([['b', 'v']]), Normal, 'B', 'y');
    ctx.recorder.annotatedEvent([['c', 'v'], ['c', 'w']], Normal, 'C', 'z');
    assert.deepEqual(calls.map(([, e]) => [e.type, e.reason, e.message, e.annotations]), [
      ['Normal', 'Synced', 'done', []],
      ['Warning', 'Failed', 'demo failed 2 times', []],
      ['Normal', 'A', 'x', [['example.com/a', '1']]],
      ['Normal', 'B', 'y', [['b', 'v']]],
      ['Normal', 'C', 'z', [['c', 'v'], ['c', 'w']]],
    ]);
    assert.throws(() => ctx.recorder.event('normal', 'X', 'y'), TypeError);
  });

  test('the client encodes and decodes JSON', () => {
    const { ctx, calls } = recording();
    assert.deepEqual(ctx.client.get(KIND, 'there'), { a: 1 });
    assert.equal(ctx.client.get({ group: '', version: 'v1', kind: 'ConfigMap' }, 'absent'), null);
    assert.deepEqual(ctx.client.apply({ kind: 'X' }), { kind: 'X' });
    assert.throws(() => ctx.client.patchStatus({}), (e) => e instanceof ClientError && e.kind === 'decode');
    assert.throws(() => ctx.client.apply({ n: 1n }), (e) => e instanceof ClientError && e.kind === 'invalid');
    assert.throws(() => ctx.client.apply(undefined), (e) => e instanceof ClientError && e.kind === 'invalid');
    assert.deepEqual(calls[0], ['get', 'mygroup.example.com/v1alpha1, Kind=MyResource', 'there']);
  });

  test('the logger formats like console.log', () => {
    const { ctx, calls } = recording();
    ctx.log.info('want %d replicas of %s', 3, 'nginx');
    ctx.log.warn('plain', { a: 1 });
    assert.deepEqual(calls, [['log', 'info', 'want 3 replicas of nginx'], ['log', 'warn', 'plain {"a":1}']]);
    assert.throws(() => ctx.log.log('fatal', 'x'), TypeError);
  });
});

test('format follows util.format for the documented directives', () => {
  assert.equal(format('%s=%d %i %f %j %%', 'a', '42', 3.9, '1.5', { b: [1] }), 'a=42 3 1.5 {"b":[1]} %');
  assert.equal(format('%s and %s', 'one'), 'one and %s');
  assert.equal(format('extra', 1, 'two', null), 'extra 1 two null');
  assert.equal(format('%o', new Error('x')), 'Error: x');
  assert.equal(format('%d', 10n), '10n');
});

test('defineReconciler checks the shape', () => {
  assert.throws(() => defineReconciler({ metadata() {} }), /no reconcile\(\) function/);
  assert.throws(() => defineReconciler(null), TypeError);
  const reconciler = { metadata() {}, reconcile() {} };
  assert.equal(defineReconciler(reconciler), reconciler);
});

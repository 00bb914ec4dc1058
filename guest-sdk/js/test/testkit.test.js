// The test kit: outcomes, the store across reconciles, and the host's checks in the fakes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ClientError, Gvk, Metadata, Normal, Response, Warning, defineReconciler } from 'wasm-reconciler-sdk';
import { FakeClient, Operation, RecordedEvent, TestKit, mergePatch } from 'wasm-reconciler-sdk/testkit';

const WIDGET = new Gvk('example.com', 'v1', 'Widget');
const CONFIG_MAP = new Gvk('', 'v1', 'ConfigMap');
const SECRET = new Gvk('', 'v1', 'Secret');

/** Exercises every capability; what it does is steered by the widget's spec. */
const widgets = defineReconciler({
  metadata() {
    return new Metadata('widgets', WIDGET).owns(CONFIG_MAP);
  },
  reconcile(ctx, request) {
    const spec = request.object.spec ?? {};
    if (spec.readSecret) ctx.client.get(SECRET, 's');
    if (spec.namespace) ctx.client.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: spec.namespace } });
    if (spec.promise) return Promise.resolve(Response.awaitChange());
    const existing = ctx.client.get(CONFIG_MAP, request.name);
    ctx.client.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: request.name },
      data: { existed: String(existing !== null) },
    });
    ctx.log.info('synced %s', request.name);
    ctx.recorder.eventf(Normal, spec.reason ?? 'Synced', 'Synced %s', request.name);
    ctx.recorder.annotatedEvent({ 'example.com/id': '1' }, Warning, 'Annotated', 'with annotations');
    ctx.client.patchStatus({ observedGeneration: request.generation, phase: 'Ready' });
    return Response.requeueAfter(60_000);
  },
});

function widget(spec = {}) {
  return { metadata: { name: 'w', namespace: 'ns', generation: 2, uid: 'u' }, spec };
}

describe('TestKit', () => {
  test('an outcome reports everything one reconcile did', () => {
    const outcome = new TestKit().reconcile(widgets, widget());

    assert.ok(outcome.ok);
    assert.equal(outcome.response.requeueAfterMs, 60_000);
    assert.deepEqual(outcome.events, [
      RecordedEvent.normal('Synced', 'Synced w'),
      RecordedEvent.warning('Annotated', 'with annotations', { 'example.com/id': '1' }),
    ]);
    assert.equal(outcome.applied.length, 1);
    assert.equal(outcome.applied[0].data.existed, 'false');
    assert.deepEqual(outcome.statusPatches, [{ observedGeneration: 2, phase: 'Ready' }]);
    assert.deepEqual(outcome.status, { observedGeneration: 2, phase: 'Ready' });
    assert.equal(outcome.object.kind, 'Widget');
    assert.deepEqual(outcome.logs, [{ level: 'info', message: 'synced w' }]);
  });

  test('the store persists across reconciles but outcomes do not accumulate', () => {
    const kit = new TestKit();
    kit.reconcile(widgets, widget());
    const second = kit.reconcile(widgets, widget());

    assert.equal(second.applied.length, 1);
    assert.equal(second.applied[0].data.existed, 'true');
    assert.equal(second.statusPatches.length, 1);
    assert.equal(kit.client.applied().length, 2);
    const stored = kit.client.object(CONFIG_MAP, 'w');
    assert.equal(stored.metadata.namespace, 'ns');
    assert.deepEqual(stored.metadata.ownerReferences, [
      { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'u', controller: true, blockOwnerDeletion: true },
    ]);
  });

  test('a bad reason is refused like the host refuses it', () => {
    const outcome = new TestKit().reconcile(widgets, widget({ reason: 'not synced' }));

    assert.equal(outcome.error?.kind, 'terminal');
    assert.match(outcome.error.message, /invalid event reason/);
    assert.deepEqual(outcome.events, []);
    assert.equal(outcome.rejectedEvents.length, 1);
    assert.equal(outcome.rejectedEvents[0].event.reason, 'not synced');
    assert.equal(outcome.rejectedEvents[0].error.kind, 'invalid-reason');
  });

  test('an undeclared kind is forbidden and terminal', () => {
    const outcome = new TestKit().reconcile(widgets, widget({ readSecret: true }));
    assert.equal(outcome.error?.kind, 'terminal');
    assert.match(outcome.error.message, /^forbidden: /);
    assert.deepEqual(outcome.applied, []);
  });

  test('another namespace is forbidden', () => {
    const outcome = new TestKit().reconcile(widgets, widget({ namespace: 'kube-system' }));
    assert.match(outcome.error?.message ?? '', /outside the reconciled object's namespace ns/);
  });

  test('injected unavailability is a transient error', () => {
    const kit = new TestKit();
    kit.client.failNext(Operation.Apply, ClientError.unavailable('connection refused'));
    const outcome = kit.reconcile(widgets, widget());
    assert.equal(outcome.error?.kind, 'transient');
    assert.deepEqual(outcome.applied, []);
  });

  test('objects given up front are visible', () => {
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w', namespace: 'ns' } };
    const outcome = new TestKit().withObject(configMap).reconcile(widgets, widget());
    assert.equal(outcome.applied[0].data.existed, 'true');
  });

  test('an async reconcile is reported, not awaited', () => {
    const outcome = new TestKit().reconcile(widgets, widget({ promise: true }));
    assert.equal(outcome.error?.kind, 'terminal');
    assert.match(outcome.error.message, /synchronous/);
  });

  test('mistakes in the test itself throw', () => {
    const kit = new TestKit();
    assert.throws(() => kit.reconcile(widgets, { metadata: {} }), /metadata.name/);
    assert.throws(() => kit.reconcile(widgets, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }), /not the one the plugin reconciles/);
    const invalid = { metadata: () => new Metadata('Bad_Name', WIDGET), reconcile() {} };
    assert.throws(() => kit.reconcile(invalid, widget()), /DNS-1123/);
  });
});

describe('FakeClient', () => {
  function scoped() {
    const client = new FakeClient().scopeTo(new Metadata('p', WIDGET).owns(CONFIG_MAP));
    client.setReconciled({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'o', namespace: 'ns', uid: 'u-1' } });
    return client;
  }

  test('apply checks what the host checks', () => {
    const client = scoped();
    const invalid = (object) => assert.throws(() => client.apply(JSON.stringify(object)), (e) => e.kind === 'invalid', JSON.stringify(object));
    invalid({ kind: 'ConfigMap', metadata: { name: 'c' } });
    invalid({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} });
    invalid({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a/b' } });
    invalid({ apiVersion: 'v1', kind: 'ConfigMap', metadata: [] });
    assert.throws(() => client.apply('[1]'), (e) => e.kind === 'invalid');
    assert.throws(() => client.apply(' '.repeat(3 * 1024 * 1024 + 1)), (e) => e.kind === 'invalid' && /limit/.test(e.message));
    assert.throws(
      () => client.apply(JSON.stringify({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'o' } })),
      (e) => e.kind === 'forbidden',
    );
    assert.deepEqual(client.applied(), []);
  });

  test('apply sets the namespace and owner and keeps the status', () => {
    const client = scoped();
    client.insert({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, status: { x: 1 } });
    const stored = JSON.parse(client.apply(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { k: 'v' }, status: { y: 2 } })));
    assert.equal(stored.metadata.namespace, 'ns');
    assert.equal(stored.metadata.ownerReferences[0].uid, 'u-1');
    assert.deepEqual(stored.status, { x: 1 });
    assert.deepEqual(client.object(CONFIG_MAP, 'c'), stored);
  });

  test('a cluster-scoped reconciled object cannot reach namespaced kinds', () => {
    const client = new FakeClient().scopeTo(new Metadata('p', WIDGET).owns(CONFIG_MAP));
    client.setReconciled({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'o' } });
    assert.throws(() => client.get(CONFIG_MAP, 'c'), (e) => e.kind === 'forbidden' && /cluster-scoped/.test(e.message));
  });

  test('a reconcile runs out of calls with a 429', () => {
    const client = scoped();
    for (let i = 0; i < 256; i++) client.get(CONFIG_MAP, 'c');
    assert.throws(() => client.get(CONFIG_MAP, 'c'), (e) => e.kind === 'api' && e.code === 429);
  });

  test('patchStatus merges into the reconciled object', () => {
    const client = new FakeClient();
    client.setReconciled({ apiVersion: 'v1', kind: 'X', metadata: { name: 'x' }, status: { a: 1, b: 2 } });
    client.patchStatus('{"b": null, "c": 3}');
    assert.deepEqual(client.reconciled().status, { a: 1, c: 3 });
    assert.throws(() => client.patchStatus('[1]'), (e) => e.kind === 'invalid');
    assert.deepEqual(client.statusPatches(), [{ b: null, c: 3 }]);
  });

  test('injected failures hit the next matching call once', () => {
    const client = new FakeClient();
    client.failNext(Operation.Get, ClientError.unavailable('down'));
    assert.throws(() => client.patchStatus('{}'), (e) => e.kind === 'invalid');
    assert.throws(() => client.get(CONFIG_MAP, 'c'), (e) => e.kind === 'unavailable');
    assert.equal(client.get(CONFIG_MAP, 'c'), null);
  });
});

test('mergePatch follows RFC 7386', () => {
  const cases = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], { a: 'c' }, { a: 'c' }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of cases) assert.deepEqual(mergePatch(target, patch), expected, JSON.stringify(patch));
});

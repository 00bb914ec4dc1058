// Type-checks the public types against a TypeScript plugin and test (`npm run typecheck`); not run.
import { ClientError, Gvk, Metadata, Normal, Response, TerminalError, Warning, context, defineReconciler, type KubeObject } from 'wasm-reconciler-sdk';
import { Operation, RecordedEvent, TestKit } from 'wasm-reconciler-sdk/testkit';

const CONFIG_MAP = new Gvk('', 'v1', 'ConfigMap');

interface Greeting extends KubeObject {
  spec: { who: string };
}

const greeter = defineReconciler({
  metadata: () => new Metadata('greeter', new Gvk('example.com', 'v1', 'Greeting')).owns(CONFIG_MAP),
  reconcile(ctx, request) {
    const { spec } = request.object as Greeting;
    if (spec.who === '') throw new TerminalError('spec.who is empty');
    const existing = context('get', () => ctx.client.get<KubeObject>(CONFIG_MAP, request.name));
    ctx.client.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: request.name }, data: { who: spec.who } });
    ctx.recorder.eventf(existing ? Normal : Warning, 'Greeted', 'Hello, %s', spec.who);
    ctx.recorder.annotatedEventf({ 'example.com/who': spec.who }, Normal, 'Annotated', '%d', 1);
    ctx.log.info('greeted %s', spec.who);
    return request.generation === null ? undefined : Response.requeueAfter(1000);
  },
});

const kit = new TestKit();
kit.client.failNext(Operation.Get, ClientError.unavailable('down'));
const outcome = kit.reconcile(greeter, { metadata: { name: 'world', namespace: 'default' }, spec: { who: 'world' } });
const events: RecordedEvent[] = outcome.events;
const ms: number | null | undefined = outcome.response?.requeueAfterMs;
void events;
void ms;

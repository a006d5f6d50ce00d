/**
 * `troupe/testing`: what tests of a Troupe deployment need and production code does not — a
 * `nats-server` (or a cluster of them) of their own, the scripted OpenAI-compatible model, and a
 * whole deployment in one process. Kept out of the main entry so it stays lean.
 */
export { startTestDeployment } from './testDeployment.ts';
export { bundledScriptsDir } from '../scriptedModel/scriptLibrary.ts';
export { startNatsServer, freePort } from './natsServer.ts';
export { startNatsCluster } from './natsCluster.ts';
export { startScriptedModelServer } from '../scriptedModel/server.ts';
export { loadScripts } from '../scriptedModel/scriptLibrary.ts';

export type { TestDeployment, TestDeploymentOptions } from './testDeployment.ts';
export type { NatsServerProcess, NatsServerOptions } from './natsServer.ts';
export type { NatsCluster, NatsClusterNode, NatsClusterOptions } from './natsCluster.ts';
export type { ScriptedModelServer, ScriptedModelServerOptions } from '../scriptedModel/server.ts';
export type { ScriptLibrary } from '../scriptedModel/scriptLibrary.ts';

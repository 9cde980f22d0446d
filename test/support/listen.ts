/** Calls listen() with a given backlog inside a namespace: the sample tuner's trigger. */
import { inNamespace } from './netns';

export function listenWithBacklog(ns: string, backlog: number): void {
  const script =
    "const s=require('net').createServer();" +
    `s.listen({host:'127.0.0.1',port:0,backlog:${backlog}},()=>s.close());`;
  inNamespace(ns, process.execPath, ['-e', script]);
}

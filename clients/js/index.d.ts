// Types of the llmsync JavaScript client (llmsync.js). Ids and seqs are strings: 64-bit values
// lose precision as JavaScript numbers.

export type Id = string;

export class LlmsyncError extends Error {
  status: number; // 0: no HTTP answer
  code: string;
  body: unknown;
}

export function randomKey(): string;

export interface SseEvent { id: string | undefined; event: string; data: string; }
export function parseSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent>;

export interface Event<T = any> { id: string | undefined; event: string; data: T; }

export interface ClientOptions {
  baseUrl?: string;
  apiKey?: string;
  fetch?: typeof fetch;
  retries?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface SessionSummary {
  id: Id; created_at: number; head: Id | null; head_seq: number; seq: number;
  metadata: Record<string, unknown>;
}

export interface Usage {
  prompt_tokens: number; cached_tokens: { ram: number; disk: number }; recomputed_tokens: number;
  generated_tokens: number; request_bytes: number; stateless_equivalent_bytes: number;
  ttft_ms: number; decode_tokens_per_s: number; divergence: null | { position: number; node: Id };
  /** Which engine served the run and why (docs/PROTOCOL.md, Cost feedback). */
  dispatch?: Dispatch;
}

export interface Dispatch {
  engine: string | null; target: string | null;
  reason: 'cache_hit' | 'least_loaded' | 'lease' | 'round_robin' | 'fallback' | 'takeover' | 'local' | null;
  matched_tokens: number;
}

export interface RunRecord {
  id: Id; session: Id; from: Id; status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  node_id: Id | null; usage: Usage; error?: { code: string; message: string };
  created_at: number; updated_at: number; last_event_id: number; worker: string | null;
  dispatch: Dispatch | null;
}

export class Client {
  constructor(options?: ClientOptions);
  baseUrl: string;
  apiKey: string;
  bytesSent: number;
  request<T = any>(method: string, path: string,
    options?: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; retry?: boolean }): Promise<T>;
  health(): Promise<{ status: string; version: string; model: string; model_fingerprint: string; active_runs: number }>;
  createSession(options?: { model?: string }): Promise<Session>;
  session(id: Id): Session;
  listSessions(options?: { limit?: number }): Promise<SessionSummary[]>;
  setSessionMetadata(sessionId: Id, metadata: Record<string, unknown>): Promise<SessionSummary>;
  getRun(runId: Id): Promise<RunRecord>;
  cancelRun(runId: Id): Promise<RunRecord>;
  runEvents(runId: Id, options?: { after?: string | number; signal?: AbortSignal }): AsyncGenerator<Event>;
}

export interface Node {
  id: Id; parent: Id | null; seq: number; depth?: number;
  kind: 'system' | 'user' | 'assistant' | 'reasoning' | 'tool_call' | 'tool_result' | 'summary' | 'template';
  visibility: 'public' | 'hidden'; n_tokens: number; created_at?: number; text?: string;
  metadata?: { tool_name?: string; call_id?: string }; sealed?: string; purged?: boolean;
}

export interface NewNode {
  kind: Node['kind']; text: string; visibility?: 'public' | 'hidden';
  metadata?: { tool_name?: string; call_id?: string };
}

export interface AppendResult {
  nodes: { id: Id; seq: number; n_tokens: number; created: boolean; sealed?: string }[];
  head: Id; replayed: boolean;
}

export interface RunOptions {
  from?: Id; max_tokens?: number; temperature?: number; top_p?: number; top_k?: number; min_p?: number;
  repeat_penalty?: number; seed?: number; stop?: string[]; lease_s?: number;
  idempotencyKey?: string; signal?: AbortSignal;
}

export interface FollowResult {
  status: 'running' | 'succeeded' | 'failed' | 'cancelled';
  text: string; nodeId: Id | null; finishReason: 'stop' | 'length' | null; usage: Usage | null;
  lastEventId: string; error: { code: string; message: string } | null;
}

export class Session {
  constructor(client: Client, id: Id);
  client: Client;
  id: Id;
  root: Id | null;
  seq: string;
  head: Id | null;
  headSeq: string;
  heads: { id: Id; seq: number; depth: number }[];
  runningRun: Id | null;
  nodes: Map<Id, Node>;
  sync(options?: { signal?: AbortSignal }): Promise<Node[]>;
  append(parent: Id | null, nodes: NewNode[],
    options?: { expectHead?: Id | null; idempotencyKey?: string; signal?: AbortSignal }): Promise<AppendResult>;
  setHead(node: Id | null, options?: { expectHead?: Id | null; signal?: AbortSignal }): Promise<{ head: Id | null; seq: number }>;
  startRun(options?: RunOptions): Promise<Id>;
  follow(runId: Id, options?: { after?: string | number; onToken?: (text: string) => void;
    onEvent?: (ev: Event) => void; signal?: AbortSignal }): Promise<FollowResult>;
  events(options?: { since?: string | number; signal?: AbortSignal }): AsyncGenerator<Event>;
  lease(node: Id, ttlS: number): Promise<{ lease_id: number; node: Id; blocks: number; cached_tokens: number; ttl_s: number; replaced: boolean }>;
  releaseLease(leaseId: number | string): Promise<{ released: number }>;
  export(options?: { format?: 'markdown' }): Promise<string>;
  setMetadata(metadata: Record<string, unknown>): Promise<SessionSummary>;
  pathTo(id: Id | null): Node[];
  children(id: Id | null): Node[];
  latestLeaf(id: Id | null): Id | null;
}

/**
 * Where an instance may run: the second seam a cluster needs (the first is
 * `instance_storage.ts`). On one machine every instance runs here; a clustered implementation
 * would take a lease with an epoch from PostgreSQL before starting the instance and fence
 * writes from older epochs.
 */

/** A claim to run one instance on this node. */
export interface Lease {
  /** Grows every time the instance moves; storage writes from older epochs are refused. */
  readonly epoch: number;
  release(): void;
}

/** Decides whether this node may run an instance. */
export interface Placement {
  /** Claims `instanceKey` for this node, or throws when another node holds it. */
  acquire(instanceKey: string): Promise<Lease>;
}

/** Single-node placement: every claim succeeds at once. */
export class LocalPlacement implements Placement {
  acquire(_instanceKey: string): Promise<Lease> {
    return Promise.resolve({ epoch: 1, release() {} });
  }
}

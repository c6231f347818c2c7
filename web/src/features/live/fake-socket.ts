// Test helper: a stand-in for the browser WebSocket that records sends and lets a test open,
// message and close it.
export class FakeSocket {
  static readonly OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  serverOpen() {
    this.readyState = 1;
    this.onopen?.();
  }
  serverSend(data: string) {
    this.onmessage?.({ data });
  }
  serverClose() {
    this.readyState = 3;
    this.onclose?.();
  }
  /** The ops sent so far, parsed. */
  ops(): unknown[] {
    return this.sent.map((s) => JSON.parse(s) as unknown);
  }
}

import type { ConnectionState } from "../live-socket";

/** Visible whenever the live socket is down; silent while connecting for the first time. */
export function ConnectionBanner({ connection }: { connection: ConnectionState }) {
  if (connection.status !== "reconnecting") return null;
  return (
    <div
      role="alert"
      data-testid="ws-banner"
      className="rounded-md border border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900"
    >
      실시간 연결이 끊겼습니다. 다시 연결하는 중… ({connection.failures}회 실패)
      <span className="ml-2 text-xs text-amber-700">Live connection lost, reconnecting</span>
    </div>
  );
}

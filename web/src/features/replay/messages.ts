// The replay feature's UI strings, Korean first with English.
import type { Lang } from "@/lib/format";

const ko = {
  replay: "시점 재생",
  replayTitle: "과거 시점부터 다시 보기",
  from: "시작 시각 (KST)",
  until: "종료 시각 (KST, 선택)",
  untilNone: "현재까지",
  speed: "재생 속도",
  start: "재생 시작",
  cancel: "닫기",
  presets: "빠른 선택",
  ago5m: "5분 전",
  ago30m: "30분 전",
  ago1h: "1시간 전",
  ago1d: "하루 전",
  krxOpen: "오늘 09:00",
  playing: "시점 재생 중",
  loading: "불러오는 중…",
  ended: "재생 완료",
  endedPresent: "재생 완료 — 현재 시각에 도달했습니다",
  failed: "재생할 수 없습니다",
  notLive: "실시간 아님",
  since: "부터",
  now: "재생 시각",
  ticks: "틱",
  goLive: "실시간으로 돌아가기",
  copyLink: "재생 링크 복사",
  copied: "복사됨",
  badTime: "재생 링크의 시각을 읽을 수 없습니다",
  badFuture: "재생 시작 시각이 미래입니다",
  badRange: "재생 종료 시각이 시작보다 앞섭니다",
  badFrom: "시작 시각은 지금보다 과거여야 합니다",
  badUntil: "종료 시각은 시작 시각보다 뒤여야 합니다",
  dismiss: "닫기",
  replayClock: "재생",
  connected: "연결됨 · 재생 중",
  newsAsOf: "재생 시점 뉴스",
  newsNone: "이 시점까지 나온 뉴스가 없습니다",
  noDataAt: "이 시점에는 기록된 시세가 없습니다",
  noDataRange: "이 구간에는 기록된 시세가 없습니다",
  noDataRow: "기록 없음",
  jumpToData: "기록이 있는 시점부터 재생",
  someNoData: "일부 종목은 이 시점에 기록된 시세가 없습니다",
} as const;

export type ReplayMessageKey = keyof typeof ko;

const en: Record<ReplayMessageKey, string> = {
  replay: "Replay",
  replayTitle: "Replay the dashboard from a past time",
  from: "Start (KST)",
  until: "End (KST, optional)",
  untilNone: "Until now",
  speed: "Speed",
  start: "Start replay",
  cancel: "Close",
  presets: "Quick picks",
  ago5m: "5 min ago",
  ago30m: "30 min ago",
  ago1h: "1 hour ago",
  ago1d: "1 day ago",
  krxOpen: "Today 09:00",
  playing: "Replaying",
  loading: "Loading…",
  ended: "Replay finished",
  endedPresent: "Replay finished — caught up with the present",
  failed: "Replay unavailable",
  notLive: "NOT LIVE",
  since: "from",
  now: "Replay time",
  ticks: "ticks",
  goLive: "Back to live",
  copyLink: "Copy replay link",
  copied: "Copied",
  badTime: "The replay link's time could not be read",
  badFuture: "The replay link starts in the future",
  badRange: "The replay link ends before it starts",
  badFrom: "The start must be in the past",
  badUntil: "The end must be after the start",
  dismiss: "Dismiss",
  replayClock: "REPLAY",
  connected: "Connected · replaying",
  newsAsOf: "News at the replay time",
  newsNone: "No news had been published by this time",
  noDataAt: "No prices were recorded at this time",
  noDataRange: "No prices were recorded in this range",
  noDataRow: "No record",
  jumpToData: "Replay from where records begin",
  someNoData: "Some instruments have no recorded prices at this time",
};

const MESSAGES: Record<Lang, Record<ReplayMessageKey, string>> = { ko, en };

export function replayText(lang: Lang, key: ReplayMessageKey): string {
  return MESSAGES[lang][key];
}

/** "기록은 … KST부터 있습니다" / "Records begin at … KST". */
export function dataFromText(lang: Lang, time: string): string {
  return lang === "ko" ? `기록은 ${time} KST부터 있습니다` : `Records begin at ${time} KST`;
}

/** A row's short form: "18:32:05부터" / "from 18:32:05". */
export function rowFromText(lang: Lang, time: string): string {
  return lang === "ko" ? `${time}부터` : `from ${time}`;
}

/** "… KST 기준" / "as of … KST". */
export function asOfText(lang: Lang, time: string): string {
  return lang === "ko" ? `${time} KST 기준` : `as of ${time} KST`;
}

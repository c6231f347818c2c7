import {
  direction,
  formatChange,
  formatKoreanUnit,
  formatKstTime,
  formatPrice,
  formatRate,
  type Direction,
} from "@/lib/format";
import type { Instrument, Market, Quote, QuoteMap } from "@/lib/types";

// Korean convention: up is red, down is blue, flat is grey.
const DIRECTION_CLASS: Record<Direction, string> = {
  up: "text-red-600",
  down: "text-blue-600",
  flat: "text-gray-500",
};

const MARKET_LABEL: Record<Market, string> = {
  open: "장중",
  closed: "장마감",
  pre: "장전",
  post: "장후",
  sim: "모의",
};

function isSimulated(instrument: Instrument, quote: Quote | undefined): boolean {
  return quote ? quote.source === "sim" || quote.market === "sim" : instrument.market === "sim";
}

function QuoteRow({ instrument, quote }: { instrument: Instrument; quote: Quote | undefined }) {
  const dir = direction(quote?.change ?? quote?.change_rate);
  const sim = isSimulated(instrument, quote);
  const market = quote?.market ?? instrument.market;
  return (
    <tr
      data-testid="quote-row"
      data-id={instrument.id}
      data-direction={dir}
      data-sim={sim ? "true" : "false"}
      className="border-b border-gray-100 last:border-0"
    >
      <td className="px-3 py-2">
        <div className="font-medium text-gray-900">{instrument.name_ko}</div>
        <div className="text-xs text-gray-500">{instrument.name_en}</div>
      </td>
      <td
        data-testid="price"
        title={sim ? "모의 시세 (simulated, not a market price)" : undefined}
        className={`px-3 py-2 text-right font-semibold tabular-nums ${DIRECTION_CLASS[dir]}`}
      >
        {formatPrice(quote?.price, instrument.currency, instrument.decimals)}
      </td>
      <td data-testid="change" className={`px-3 py-2 text-right tabular-nums ${DIRECTION_CLASS[dir]}`}>
        {formatChange(quote?.change, instrument.currency, instrument.decimals)}
      </td>
      <td data-testid="change-rate" className={`px-3 py-2 text-right tabular-nums ${DIRECTION_CLASS[dir]}`}>
        {formatRate(quote?.change_rate)}
      </td>
      <td data-testid="day-volume" className="px-3 py-2 text-right tabular-nums text-gray-700">
        {formatKoreanUnit(quote?.day_volume)}
      </td>
      <td data-testid="time" className="px-3 py-2 text-right tabular-nums text-gray-500">
        {formatKstTime(quote?.ts)}
      </td>
      <td className="px-3 py-2 text-center text-xs whitespace-nowrap">
        {sim ? (
          <span
            data-testid="sim-badge"
            title="simulated"
            className="rounded border border-amber-400 bg-amber-100 px-1.5 py-0.5 font-semibold text-amber-800"
          >
            모의
          </span>
        ) : (
          <span className="text-gray-500">{MARKET_LABEL[market] ?? market}</span>
        )}
        {quote?.stale ? (
          <span
            data-testid="stale-badge"
            className="ml-1 rounded border border-gray-300 bg-gray-100 px-1.5 py-0.5 text-gray-600"
          >
            지연
          </span>
        ) : null}
      </td>
    </tr>
  );
}

export function QuoteTable({ instruments, quotes }: { instruments: readonly Instrument[]; quotes: QuoteMap }) {
  return (
    <div className="overflow-x-auto rounded-lg border border-gray-200 bg-white">
      <table data-testid="quote-table" className="w-full text-sm">
        <thead className="bg-gray-50 text-xs text-gray-500">
          <tr>
            <th scope="col" className="px-3 py-2 text-left font-medium">종목</th>
            <th scope="col" className="px-3 py-2 text-right font-medium">현재가</th>
            <th scope="col" className="px-3 py-2 text-right font-medium">전일대비</th>
            <th scope="col" className="px-3 py-2 text-right font-medium">등락률</th>
            <th scope="col" className="px-3 py-2 text-right font-medium">거래량</th>
            <th scope="col" className="px-3 py-2 text-right font-medium">시각 (KST)</th>
            <th scope="col" className="px-3 py-2 text-center font-medium">시장</th>
          </tr>
        </thead>
        <tbody>
          {instruments.map((instrument) => (
            <QuoteRow key={instrument.id} instrument={instrument} quote={quotes[instrument.id]} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

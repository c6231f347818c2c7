"use client";

import { useQuery } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { useRetain } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { instrumentQueries } from "@/lib/api";
import {
  addInstrument,
  cycleWidgetSize,
  moveInstrument,
  moveWidget,
  removeInstrument,
  swapInstrument,
  type Layout,
  type Widget,
} from "@/lib/layout";
import type { Instrument } from "@/lib/types";
import { InstrumentSearch } from "./instrument-search";
import { QuoteRow } from "./quote-row";
import { WidgetFrame } from "./widget-frame";

const toMap = (list: Instrument[]) => new Map(list.map((i) => [i.id, i]));

export function QuotesWidget({
  widget,
  editable,
  selectedId,
  onSelect,
  update,
}: {
  widget: Widget;
  editable: boolean;
  selectedId: string;
  onSelect: (id: string) => void;
  update: (f: (l: Layout) => Layout) => void;
}) {
  const { t } = usePrefs();
  const instruments = useQuery({ ...instrumentQueries.all(), select: toMap }).data;
  const [editing, setEditing] = useState(false);
  const [search, setSearch] = useState<{ mode: "add" } | { mode: "swap"; from: string } | null>(null);
  useRetain(widget.ids);
  const wid = widget.id;
  const isEditing = editing && editable;

  const pick = useCallback(
    (id: string) => {
      if (search?.mode === "swap") update((l) => swapInstrument(l, wid, search.from, id));
      else update((l) => addInstrument(l, wid, id));
      setSearch(null);
    },
    [search, update, wid],
  );

  return (
    <WidgetFrame
      widget={widget}
      editing={isEditing}
      onToggleEdit={
        editable
          ? () => {
              setEditing((e) => !e);
              setSearch(null);
            }
          : null
      }
      onMove={(d) => update((l) => moveWidget(l, wid, d))}
      onResize={() => update((l) => cycleWidgetSize(l, wid))}
    >
      {search ? (
        <div className="border-b border-slate-100 p-2 dark:border-slate-800">
          <InstrumentSearch
            label={search.mode === "swap" ? t("swap") : t("add")}
            exclude={search.mode === "swap" ? [search.from] : widget.ids}
            onPick={pick}
            onCancel={() => setSearch(null)}
          />
        </div>
      ) : null}
      <ul className="flex flex-col" data-testid="quote-list">
        {widget.ids.map((id) => (
          <QuoteRow
            key={id}
            id={id}
            instrument={instruments?.get(id)}
            selected={id === selectedId}
            onSelect={onSelect}
            controls={
              isEditing
                ? {
                    onUp: () => update((l) => moveInstrument(l, wid, id, -1)),
                    onDown: () => update((l) => moveInstrument(l, wid, id, 1)),
                    onSwap: () => setSearch({ mode: "swap", from: id }),
                    onRemove: () => update((l) => removeInstrument(l, wid, id)),
                  }
                : null
            }
          />
        ))}
      </ul>
      {isEditing && !search ? (
        <button
          type="button"
          data-testid="add-instrument"
          onClick={() => setSearch({ mode: "add" })}
          className="m-2 rounded-md border border-dashed border-slate-300 py-1.5 text-xs text-slate-500 outline-none hover:border-sky-500 hover:text-sky-600 focus-visible:ring-2 focus-visible:ring-sky-500 dark:border-slate-700"
        >
          + {t("add")}
        </button>
      ) : null}
    </WidgetFrame>
  );
}

import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const COLORS = ['#4f46e5', '#dc2626', '#0891b2', '#16a34a', '#d97706', '#9333ea'];

/**
 * A uPlot time series. `data` is `[xs (unix seconds), ...ys]`; `series` names each y
 * (`{ label, color, unit }`). `bars` draws bars. The container gets `data-drawn` once a draw
 * with data has happened (the e2e timing reads it).
 */
export function TimeChart({ data, series, height = 200, label, bars = false, yUnit = '' }) {
  const box = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const width = Math.max(200, el.clientWidth || 600);
    const opts = {
      width,
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#eef2f7' } },
        {
          stroke: '#64748b',
          grid: { stroke: '#eef2f7' },
          size: 56,
          values: (u, ticks) => ticks.map((t) => `${compact(t)}${yUnit}`),
        },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || COLORS[i % COLORS.length],
          width: 2,
          fill: bars ? `${s.color || COLORS[i % COLORS.length]}55` : undefined,
          paths: bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
          points: { show: true, size: 4, fill: s.color || COLORS[i % COLORS.length] },
          value: (u, v) => (v == null ? '—' : `${compact(v)}${s.unit || yUnit}`),
        })),
      ],
      hooks: {
        draw: [
          (u) => {
            if (u.data[0]?.length) el.dataset.drawn = '1';
          },
        ],
      },
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w && plot.current && Math.abs(plot.current.width - w) > 2) {
        plot.current.setSize({ width: w, height });
      }
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
      delete el.dataset.drawn;
    };
    // Rebuild on a change of series shape; data changes go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [series.map((s) => s.label).join('|'), height, bars, yUnit]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div className="chart" ref={box} role="img" aria-label={label} />;
}

function compact(v) {
  if (v == null) return '';
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a < 10 ? 1 : 0)}`;
}

/** Turns usage points into uPlot columns for the chosen fields. */
export function columns(points, fields) {
  const xs = points.map((p) => Math.floor(new Date(p.start).getTime() / 1000));
  return [xs, ...fields.map((f) => points.map((p) => p.stats[f] ?? null))];
}

/** A semicircle-free quota gauge: used, projected, and the quota. */
export function Gauge({ used, projected, limit }) {
  const u = limit ? Math.min(1, used / limit) : 0;
  const p = limit ? Math.min(1, projected / limit) : 0;
  return (
    <div
      className="gauge"
      role="meter"
      aria-valuemin={0}
      aria-valuemax={limit || 0}
      aria-valuenow={used}
      aria-label="Monthly quota used"
    >
      <div className="gauge-projected" style={{ width: `${p * 100}%` }} />
      <div className={`gauge-used ${u >= 0.9 ? 'bad' : u >= 0.8 ? 'warn' : ''}`} style={{ width: `${u * 100}%` }} />
    </div>
  );
}

% v = live.get('volume', [0] * 24)
<p class="muted">{{h.count(sum(v), 'call')}} since midnight, by hour</p>
{{!h.bars(v, ['%02d' % i for i in range(24)], label="today's calls by hour")}}

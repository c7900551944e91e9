% if snap.get('box_error'):
<p class="wb-error" role="alert">The box does not answer: {{snap['box_error']}}</p>
% elif not snap['queues']:
<p class="wb-empty">No queues are configured.</p>
% end
% for q in snap['queues']:
<section class="wb-queue" id="queue-{{q['queue']}}" data-queue="{{q['queue']}}">
<h2>{{q['name']}} <small>{{q['number']}}</small></h2>
<div class="wb-tiles">
<div class="wb-tile{{' wb-alert' if q['waiting'] else ''}}"><span class="wb-value waiting-count">{{len(q['waiting'])}}</span><span class="wb-label">waiting</span></div>
<div class="wb-tile"><span class="wb-value longest-wait" data-seconds="{{'%.0f' % q['longest_wait']}}">{{clock(q['longest_wait'])}}</span><span class="wb-label">longest wait</span></div>
<div class="wb-tile {{q['sl_class']}}"><span class="wb-value service-level">{{'%.0f' % q['sl_pct'] if q['sl_pct'] is not None else '–'}}{{!'<span class="wb-unit">%</span>' if q['sl_pct'] is not None else ''}}</span><span class="wb-label">service level today (≤&nbsp;{{'%g' % q['service_level']}}&nbsp;s)</span></div>
<div class="wb-tile"><span class="wb-value answered">{{q['answered']}}</span><span class="wb-label">answered today</span></div>
<div class="wb-tile"><span class="wb-value abandoned">{{q['abandoned']}}</span><span class="wb-label">abandoned today</span></div>
</div>
<ul class="wb-agents" aria-label="agents">
<li class="st-idle"><b class="agents-available">{{q['counts']['idle']}}</b> available</li>
<li class="st-oncall"><b class="agents-oncall">{{q['counts']['on call']}}</b> on call</li>
<li class="st-ringing"><b class="agents-ringing">{{q['counts']['ringing']}}</b> ringing</li>
<li class="st-wrapup"><b class="agents-wrapup">{{q['counts']['wrap-up']}}</b> wrap-up</li>
<li class="st-paused"><b class="agents-paused">{{q['counts']['paused']}}</b> paused</li>
<li class="st-out"><b class="agents-out">{{q['counts']['logged out']}}</b> logged out</li>
</ul>
<div class="wb-columns">
<div>
<h3>Waiting</h3>
% if q['waiting']:
<ol class="wb-waiting">
% for w in q['waiting']:
<li data-call="{{w['call']}}"><span class="wb-caller">{{snap['contacts'].get(w['caller']) or w['caller'] or 'unknown'}}{{' (callback)' if w.get('callback') else ''}}</span><span class="wb-wait">{{clock(w['wait'])}}</span></li>
% end
</ol>
% else:
<p class="wb-none">Nobody is waiting.</p>
% end
</div>
<div>
<h3>Agents</h3>
<ul class="wb-agent-list">
% for ext, state in sorted(q['agents'].items()):
<li class="st-{{state.replace(' ', '').replace('-', '')}}" data-agent="{{ext}}"><span>{{ext}} {{snap['names'].get(ext, '')}}</span><span>{{state}}</span></li>
% end
% if not q['agents']:
<li class="wb-none">No agents.</li>
% end
</ul>
</div>
</div>
</section>
% end

% rebase('layout', title='Line settings of ' + port)
<link rel="stylesheet" href="{{css}}">
<p><a href="/ports">← Analog ports</a></p>
<h1>Line settings of {{port}}</h1>
<p>How the box answers calls on this line and how it knows the far end has hung up. Calls on it go to <strong>{{spec.get('inbound') or 'nowhere yet'}}</strong>. An empty number, or a box as it came, means this line's region default (region <strong>{{region}}</strong>, shown under each field); <em>Reset to region defaults</em> puts every setting back to it.</p>
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
% def hint(key):
% return info[key][1] + '; region default: ' + shown(defaults[key])
% end
% def switch(key):
<label class="check" for="{{key}}"><input type="checkbox" id="{{key}}" name="{{key}}" value="1"{{!' checked' if form[key] else ''}}{{!' aria-invalid="true" aria-describedby="%s-error"' % key if errors.get(key) else ''}}> {{info[key][0]}}</label>
% if errors.get(key):
<small id="{{key}}-error" class="field-error">{{errors[key]}}</small>
% else:
<small>{{hint(key)}}</small>
% end
% end
<form method="post" action="/ports/{{port}}/line" novalidate id="line-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset id="answering">
<legend><strong>Answering</strong></legend>
% include('field', name='rings_before_answer', label=info['rings_before_answer'][0], value=form['rings_before_answer'], error=errors.get('rings_before_answer'), hint=hint('rings_before_answer'), attrs='inputmode="numeric" placeholder="%s"' % shown(defaults['rings_before_answer']))
% switch('answer_on_cid')
% switch('answer_polarity')
</fieldset>
<fieldset id="disconnect">
<legend><strong>Disconnect supervision</strong></legend>
% switch('disconnect_polarity')
% include('field', name='loop_drop_ms', label=info['loop_drop_ms'][0], value=form['loop_drop_ms'], error=errors.get('loop_drop_ms'), hint=hint('loop_drop_ms') + ' ms (empty: the default)', attrs='inputmode="numeric" placeholder="%s"' % shown(defaults['loop_drop_ms']))
<p class="muted" id="disconnect_tones-label">{{info['disconnect_tones'][0]}}</p>
<div class="buttons" role="group" aria-labelledby="disconnect_tones-label">
% for t in tones:
<label class="check" for="tone-{{t}}"><input type="checkbox" id="tone-{{t}}" name="tone-{{t}}" value="1"{{!' checked' if t in form['disconnect_tones'] else ''}}> {{t}}</label>
% end
</div>
% if errors.get('disconnect_tones'):
<small id="disconnect_tones-error" class="field-error">{{errors['disconnect_tones']}}</small>
% else:
<small>{{hint('disconnect_tones')}}</small>
% end
% include('field', name='silence_timeout', label=info['silence_timeout'][0], value=form['silence_timeout'], error=errors.get('silence_timeout'), hint=info['silence_timeout'][1] + '; empty: off (hold music would count as voice, silence not)', attrs='inputmode="decimal" placeholder="off"')
</fieldset>
<div class="buttons">
<button type="submit" name="action" value="save" id="save-line">Save line settings</button>
<button type="submit" name="action" value="reset" id="reset-line" class="secondary">Reset to region defaults</button>
</div>
</form>
% if proposal:
<section id="line-proposal">
<h2>Last line test</h2>
% if proposal.get('line'):
<p>The line test of {{port}} proposes: {{', '.join('%s %s' % (k, shown(v)) for k, v in proposal['line'].items())}}.</p>
<details><summary>Report</summary><pre>{{proposal.get('report', '')}}</pre></details>
<form method="post" action="/ports/{{port}}/line">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" name="action" value="proposal" id="apply-proposal" class="secondary">Use the proposal</button>
</form>
% else:
<p class="muted">A line test of {{port}} is running (phase {{proposal.get('phase', '?')}}); its proposal shows here when it ends.</p>
% end
</section>
% end

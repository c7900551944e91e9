% s = live['health']
% box = live['box']
<dl class="health">
% hist = live.get('history', [])
<dt>CPU</dt><dd id="cpu">{{'%.0f%%' % s.cpu_percent if s.cpu_percent is not None else 'measuring…'}} · load {{'%.2f' % s.load1}} {{!h.spark([x.cpu_percent for x in hist], top=100, label='CPU, last minutes')}}</dd>
<dt>Memory</dt><dd><meter min="0" max="{{s.mem_total}}" value="{{s.mem_used}}"></meter> {{h.bytes(s.mem_used)}} of {{h.bytes(s.mem_total)}} {{!h.spark([x.mem_used for x in hist], top=s.mem_total, label='memory, last minutes')}}</dd>
<dt>Disk</dt><dd><meter min="0" max="{{s.disk_total}}" value="{{s.disk_used}}"></meter> {{h.bytes(s.disk_used)}} of {{h.bytes(s.disk_total)}} {{!h.spark([x.disk_used for x in hist], top=s.disk_total, label='disk, last minutes')}}</dd>
% if s.temperature is not None:
<dt>Temperature</dt><dd>{{'%.1f' % s.temperature}} °C {{!h.spark([x.temperature for x in hist], label='temperature, last minutes')}}</dd>
% end
<dt>Up</dt><dd>{{h.duration(s.uptime)}}</dd>
% adm = box.get('admission') or {}
% if adm.get('state') in ('refusing', 'limiting'):
<dt>New calls</dt><dd class="warn" id="admission" role="alert">{{'Refusing new calls: the box is overloaded (' + adm.get('reason', '?') + ')' if adm['state'] == 'refusing' else 'Refusing calls beyond ' + ('%.0f' % (adm.get('governed_setups_per_second') or adm.get('max_setups_per_second') or 0)) + ' new calls a second' + (' (all the processor carries)' if adm.get('reason') == 'cpu' else '')}} for {{h.duration(adm.get('seconds') or 0)}}; calls already up keep their audio · {{h.count(adm.get('refused_recently'), 'call')}} refused in the last {{'%d' % ((adm.get('recent_seconds') or 300) // 60)}} minutes</dd>
% elif adm.get('refused_recently'):
<dt>New calls</dt><dd id="admission">admitting again · {{h.count(adm.get('refused_recently'), 'call')}} refused in the last {{'%d' % ((adm.get('recent_seconds') or 300) // 60)}} minutes (overload)</dd>
% end
<dt>PBX</dt><dd>{{'not answering' if live['box_error'] else h.count(box.get('calls'), 'call') + ' · ' + h.count(box.get('registrations'), 'registration') + ' · ' + h.count(box.get('banned'), 'banned address', 'banned addresses')}}</dd>
</dl>

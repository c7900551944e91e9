% if not live['registrations']:
<tr><td colspan="6" class="muted">No phone is registered.</td></tr>
% end
% for r in live['registrations']:
<tr><td>{{r['extension']}}</td><td>{{r['source']}}</td><td class="opt">{{r['transport']}}</td><td class="opt">{{h.duration(max(0, r['expires_in']))}}</td><td class="opt">{{r.get('user_agent') or '?'}}</td><td>{{'yes' if r.get('reachable', True) else 'no'}}</td></tr>
% end

<p class="steps">First boot · step {{step}} of 4:
% for i, label in enumerate(("admin password", "region", "extensions", "backup"), 1):
<span{{!' class="current"' if i == step else ''}}>{{label}}</span>{{' · ' if i < 4 else ''}}
% end
</p>

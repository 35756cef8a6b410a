# Retention below a day loses evidence; above the limit it costs storage nobody asked for.
package provision.rules.retention

import rego.v1

default min_days := 1

min_days := data.provision.config.min_retention_days

default max_days := 90

max_days := data.provision.config.max_retention_days

findings contains f if {
	some rc in input.resource_changes
	rc.type == "null_resource"
	data.provision.plan.changing(rc)
	rc.change.after.triggers.kind == "temporal_namespace"

	# Triggers are a map of strings in the plan, whatever the variable's type was.
	days := to_number(rc.change.after.triggers.retention_days)
	out_of_range(days)
	f := finding(rc, days)
}

findings contains f if {
	some rc in input.resource_changes
	rc.type == "temporalcloud_namespace"
	data.provision.plan.changing(rc)
	days := rc.change.after.retention_days
	out_of_range(days)
	f := finding(rc, days)
}

out_of_range(days) if days < min_days

out_of_range(days) if days > max_days

finding(rc, days) := {
	"id": "retention",
	"level": "hard-mandatory",
	"message": sprintf(
		"%s sets retention to %v days; allowed is %v to %v",
		[rc.address, days, min_days, max_days],
	),
	"resource": rc.address,
}

# A large plan is not wrong, but deserves a closer read.
package provision.rules.change_count

import rego.v1

default max_changes := 10

max_changes := data.provision.config.max_changes

findings contains f if {
	n := count([rc |
		some rc in input.resource_changes
		data.provision.plan.changed(rc)
	])
	n > max_changes
	f := {
		"id": "change_count",
		"level": "advisory",
		"message": sprintf("the plan changes %d resources, more than %d", [n, max_changes]),
	}
}

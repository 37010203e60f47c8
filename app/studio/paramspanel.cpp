#include "paramspanel.h"

#include <QSettings>

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>
#include <QStandardItemModel>
#include <cmath>

namespace studio {

SliderSpin::SliderSpin(double lo, double hi, int decimals, std::function<int(double)> toSlider,
                       std::function<double(int)> fromSlider, QWidget* parent)
    : QWidget(parent), m_toSlider(std::move(toSlider)), m_fromSlider(std::move(fromSlider)) {
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(0, 0, 0, 0);
    m_slider = new QSlider(Qt::Horizontal, this);
    m_slider->setRange(0, 1000);
    m_slider->setMinimumWidth(90); // a slider to drag, not a knob
    m_spin = new QDoubleSpinBox(this);
    m_spin->setRange(lo, hi);
    m_spin->setDecimals(decimals);
    m_spin->setSingleStep(std::pow(10.0, -decimals + 1) / 2);
    m_spin->setMinimumWidth(80);
    l->addWidget(m_slider, 1);
    l->addWidget(m_spin);
    connect(m_slider, &QSlider::valueChanged, this, [this](int v) {
        if (m_syncing) return;
        m_syncing = true;
        m_spin->setValue(m_fromSlider(v));
        m_syncing = false;
        emit valueChanged(m_spin->value());
    });
    connect(m_spin, &QDoubleSpinBox::valueChanged, this, [this](double v) {
        if (m_syncing) return;
        m_syncing = true;
        m_slider->setValue(m_toSlider(v));
        m_syncing = false;
        emit valueChanged(v);
    });
}

double SliderSpin::value() const {
    return m_spin->value();
}
void SliderSpin::setValue(double v) {
    m_spin->setValue(v);
}

ParamsPanel::ParamsPanel(QWidget* parent) : QWidget(parent) {
    auto* form = new QFormLayout(this);
    auto linear = [](double lo, double hi) {
        return std::make_pair(
            std::function<int(double)>(
                [=](double v) { return int(std::lround(1000 * (v - lo) / (hi - lo))); }),
            std::function<double(int)>([=](int s) { return lo + (hi - lo) * s / 1000.0; }));
    };
    const auto [bTo, bFrom] = linear(1, 100);
    m_budget = new SliderSpin(1, 100, 1, bTo, bFrom, this);
    m_budget->spin()->setSuffix(" %");
    m_k = new QSpinBox(this);
    m_k->setRange(1, 1);
    m_k->setToolTip(tr("K, the number of merged tokens"));
    auto* budgetRow = new QHBoxLayout;
    budgetRow->addWidget(m_budget, 1);
    budgetRow->addWidget(new QLabel(tr("K"), this));
    budgetRow->addWidget(m_k);
    form->addRow(tr("Budget"), budgetRow);

    // temperature on a log scale, 0.01 .. 10
    m_tau = new SliderSpin(
        0.01, 10, 3, [](double v) { return int(std::lround(1000 * std::log10(v / 0.01) / 3)); },
        [](int s) { return 0.01 * std::pow(10.0, 3.0 * s / 1000); }, this);
    m_tau->setToolTip(tr("Gumbel-softmax temperature τ (log scale): lower is more discrete"));
    form->addRow(tr("Temperature τ"), m_tau);

    m_eps = new QDoubleSpinBox(this);
    m_eps->setRange(0, 1);
    m_eps->setDecimals(3);
    m_eps->setSingleStep(0.005);
    m_eps->setToolTip(tr("Background weight ε in the mass m = π s + (1 − π) ε"));
    form->addRow(tr("Background ε"), m_eps);

    const auto [gTo, gFrom] = linear(0, 1);
    m_gamma = new SliderSpin(0, 1, 2, gTo, gFrom, this);
    m_fidelity = new QLabel(this);
    m_fidelity->setToolTip(tr("fidelity_ok: norm-mass retention ≥ γ"));
    auto* gammaRow = new QHBoxLayout;
    gammaRow->addWidget(m_gamma, 1);
    gammaRow->addWidget(m_fidelity);
    form->addRow(tr("Norm mass γ"), gammaRow);

    m_alpha = new QDoubleSpinBox(this);
    m_alpha->setRange(0, 10);
    m_alpha->setDecimals(3);
    m_alpha->setSingleStep(0.05);
    m_alpha->setToolTip(tr("Weight α of the AR loss in the total loss"));
    form->addRow(tr("AR weight α"), m_alpha);

    m_layers = new QSpinBox(this);
    m_layers->setRange(1, 64);
    m_layers->setToolTip(tr("Multi-scale attention layers L when saliency comes from the tokens"));
    form->addRow(tr("Layers L"), m_layers);
    m_refine = new QSpinBox(this);
    m_refine->setRange(0, 20);
    m_refine->setToolTip(tr("Refinement rounds R of seeded clustering"));
    form->addRow(tr("Refinements R"), m_refine);
    m_seed = new QSpinBox(this);
    m_seed->setRange(0, 2147483647);
    m_seed->setToolTip(tr("Philox seed of the Gumbel uniforms"));
    form->addRow(tr("Seed"), m_seed);
    m_patch = new QSpinBox(this);
    m_patch->setRange(2, 128);
    m_patch->setValue(16);
    m_patch->setToolTip(tr("Image patch size P (re-tokenizes the image)"));
    form->addRow(tr("Patch size"), m_patch);

    m_method = new QComboBox(this);
    m_method->addItem(tr("QuickMerge++"), int(qmpp::Method::QuickMerge));
    m_method->addItem(tr("ToMe (bipartite matching)"), int(qmpp::Method::ToMe));
    m_method->addItem(tr("Top-K saliency pruning"), int(qmpp::Method::TopK));
    m_method->addItem(tr("Random pruning"), int(qmpp::Method::Random));
    m_method->setToolTip(tr("Baselines share K and every metric; pruned tokens show dark"));
    form->insertRow(0, tr("Method"), m_method);
    m_cluster = new QComboBox(this);
    m_cluster->addItem(tr("seeded"), int(qmpp::ClusterMethod::Seeded));
    m_cluster->addItem(tr("agglomerative (exact)"), int(qmpp::ClusterMethod::Agglomerative));
    m_cluster->addItem(tr("reference (scikit-learn)"), int(qmpp::ClusterMethod::Reference));
    form->addRow(tr("Clustering"), m_cluster);
    m_backend = new QComboBox(this);
    m_backend->addItem(tr("CPU"), int(qmpp::BackendKind::Cpu));
    m_backend->addItem(tr("CUDA basic"), int(qmpp::BackendKind::CudaBasic));
    m_backend->addItem(tr("CUDA optimized"), int(qmpp::BackendKind::Cuda));
    form->addRow(tr("Backend"), m_backend);
    m_precision = new QComboBox(this);
    m_precision->addItem(tr("FP32"), int(qmpp::Precision::FP32));
    m_precision->addItem(tr("FP16"), int(qmpp::Precision::FP16));
    form->addRow(tr("Precision"), m_precision);

    // what the method did with this input, from the last result (qmpp/diagnostics.h)
    m_diagnostics = new QLabel(this);
    m_diagnostics->setWordWrap(true);
    m_diagnostics->setTextFormat(Qt::RichText);
    m_diagnostics->setObjectName(QStringLiteral("diagnostics"));
    form->addRow(m_diagnostics);

    setParams(qmpp::MergeParams{});
    connect(m_budget, &SliderSpin::valueChanged, this, [this] {
        budgetToK();
        changed();
    });
    connect(m_k, &QSpinBox::valueChanged, this, [this] {
        kToBudget();
        changed();
    });
    connect(m_tau, &SliderSpin::valueChanged, this, &ParamsPanel::changed);
    connect(m_gamma, &SliderSpin::valueChanged, this, &ParamsPanel::changed);
    for (auto* s : {m_eps, m_alpha})
        connect(s, &QDoubleSpinBox::valueChanged, this, &ParamsPanel::changed);
    for (auto* s : {m_layers, m_refine, m_seed})
        connect(s, &QSpinBox::valueChanged, this, &ParamsPanel::changed);
    connect(m_patch, &QSpinBox::valueChanged, this, [this](int p) {
        if (!m_quiet) emit patchChanged(p);
    });
    for (auto* c : {m_method, m_cluster, m_backend, m_precision})
        connect(c, &QComboBox::currentIndexChanged, this, &ParamsPanel::changed);
}

void ParamsPanel::changed() {
    if (!m_quiet) emit paramsChanged();
}

long long ParamsPanel::budgetK() const {
    return std::max<long long>(
        1, (long long)std::floor(m_budget->value() / 100.0 * double(m_n) + 1e-9));
}

bool ParamsPanel::kFollowsBudget() const {
    return m_k->value() == budgetK();
}

void ParamsPanel::budgetToK() {
    const QSignalBlocker b(m_k);
    m_k->setValue(int(budgetK()));
}

void ParamsPanel::kToBudget() {
    const QSignalBlocker b(m_budget);
    const QSignalBlocker bs(m_budget->spin());
    const QSignalBlocker bl(m_budget->slider());
    const double pct = 100.0 * m_k->value() / double(m_n);
    m_budget->spin()->setValue(pct);
    m_budget->slider()->setValue(int(std::lround(1000 * (pct - 1) / 99)));
}

void ParamsPanel::setTokenCount(long long n) {
    m_n = std::max<long long>(1, n);
    const bool quiet = m_quiet;
    m_quiet = true;
    { // the budget carries over to the new input; a K clamped to the new range must not
      // rewrite it
        const QSignalBlocker b(m_k);
        m_k->setRange(1, int(m_n));
    }
    budgetToK();
    m_quiet = quiet;
}

qmpp::MergeParams ParamsPanel::params() const {
    qmpp::MergeParams p;
    p.k = m_k->value();
    p.budget = m_budget->value() / 100.0;
    p.temperature = m_tau->value();
    p.epsilon = m_eps->value();
    p.gamma = m_gamma->value();
    p.alpha = m_alpha->value();
    p.layers = m_layers->value();
    p.refine = m_refine->value();
    p.seed = std::uint64_t(m_seed->value());
    p.method = qmpp::Method(m_method->currentData().toInt());
    p.cluster = qmpp::ClusterMethod(m_cluster->currentData().toInt());
    p.backend = qmpp::BackendKind(m_backend->currentData().toInt());
    p.precision = qmpp::Precision(m_precision->currentData().toInt());
    if (p.backend == qmpp::BackendKind::Cpu) p.precision = qmpp::Precision::FP32;
    return p;
}

void ParamsPanel::setParams(const qmpp::MergeParams& p) {
    m_quiet = true;
    m_budget->setValue(p.budget * 100);
    budgetToK();
    if (p.k > 0) m_k->setValue(int(p.k));
    m_tau->setValue(p.temperature);
    m_eps->setValue(p.epsilon);
    m_gamma->setValue(p.gamma);
    m_alpha->setValue(p.alpha);
    m_layers->setValue(p.layers);
    m_refine->setValue(p.refine);
    m_seed->setValue(int(p.seed));
    m_method->setCurrentIndex(std::max(0, m_method->findData(int(p.method))));
    m_cluster->setCurrentIndex(m_cluster->findData(int(p.cluster)));
    const int b = m_backend->findData(
        int(p.backend == qmpp::BackendKind::Auto ? qmpp::BackendKind::Cpu : p.backend));
    m_backend->setCurrentIndex(b < 0 ? 0 : b);
    m_precision->setCurrentIndex(m_precision->findData(int(p.precision)));
    m_quiet = false;
}

int ParamsPanel::patch() const {
    return m_patch->value();
}
void ParamsPanel::setPatch(int p) {
    m_quiet = true;
    m_patch->setValue(p);
    m_quiet = false;
}

void ParamsPanel::setFidelity(bool ok, double retention) {
    m_fidelity->setText(ok ? tr("✔ %1").arg(retention, 0, 'f', 3)
                           : tr("✘ %1").arg(retention, 0, 'f', 3));
    m_fidelity->setStyleSheet(ok ? "color: #2e9d46; font-weight: bold"
                                 : "color: #d04030; font-weight: bold");
}

void ParamsPanel::setDiagnostics(const qmpp::MethodDiagnostics& d, double tau) {
    // short lines here; the report's full sentences in the tooltip
    QStringList facts, notes;
    if (d.hasMask) {
        facts << tr("π max %1 over %2 tokens").arg(d.piMax, 0, 'f', 2).arg(d.piEffective, 0, 'f', 1)
              << tr("noise chose %1 % of F").arg(100.0 * d.noiseDecided, 0, 'f', 0);
        if (d.piDegenerate) notes << tr("π is degenerate: raise τ");
        if (d.noiseDominates) notes << tr("F is mostly noise");
    }
    if (std::isfinite(d.positionRankCorrelation)) {
        facts << tr("ρ(s, position) %1").arg(d.positionRankCorrelation, 0, 'f', 2);
        if (d.followsPosition) notes << tr("saliency follows position");
    }
    QString html = QStringLiteral("<span style='color:palette(mid)'>%1</span>")
                       .arg(facts.join(QStringLiteral(" · ")).toHtmlEscaped());
    if (!notes.isEmpty())
        html += QStringLiteral("<br><span style='color:#b06000'>⚠ %1</span>")
                    .arg(notes.join(QStringLiteral(" · ")).toHtmlEscaped());
    m_diagnostics->setText(html);
    m_warnings.clear();
    for (const auto& w : qmpp::diagnosticWarnings(d, tau))
        m_warnings << QString::fromStdString(w);
    m_diagnostics->setToolTip(
        (m_warnings.isEmpty() ? QString() : m_warnings.join(QStringLiteral("\n")) + "\n\n") +
        tr("π max and the tokens it spreads over (1/Σπ²): how concentrated the mask is.\n"
           "Noise chose: the share of the hard foreground F that changes with the noise off.\n"
           "ρ: Spearman correlation of saliency with the token index."));
}

QString ParamsPanel::diagnosticsText() const {
    return m_diagnostics->text();
}

void ParamsPanel::setGpu(bool available, const QString& why) {
    auto* model = qobject_cast<QStandardItemModel*>(m_backend->model());
    for (int i = 1; i < m_backend->count(); ++i) {
        model->item(i)->setEnabled(available);
        model->item(i)->setToolTip(available ? QString() : why);
    }
    auto* pm = qobject_cast<QStandardItemModel*>(m_precision->model());
    pm->item(1)->setEnabled(available);
    pm->item(1)->setToolTip(available ? tr("half-precision storage, FP32 accumulation") : why);
    if (!available) {
        m_quiet = true;
        m_backend->setCurrentIndex(0);
        m_precision->setCurrentIndex(0);
        m_quiet = false;
    }
}

void ParamsPanel::writeSettings(QSettings& s, const qmpp::MergeParams& p) {
    s.beginGroup("params");
    s.setValue("budget", p.budget);
    s.setValue("temperature", p.temperature);
    s.setValue("epsilon", p.epsilon);
    s.setValue("gamma", p.gamma);
    s.setValue("alpha", p.alpha);
    s.setValue("layers", p.layers);
    s.setValue("refine", p.refine);
    s.setValue("seed", qulonglong(p.seed));
    s.setValue("method", int(p.method));
    s.setValue("cluster", int(p.cluster));
    s.setValue("backend", int(p.backend));
    s.setValue("precision", int(p.precision));
    s.endGroup();
}

qmpp::MergeParams ParamsPanel::readSettings(QSettings& s) {
    qmpp::MergeParams p;
    s.beginGroup("params");
    p.budget = s.value("budget", p.budget).toDouble();
    p.temperature = s.value("temperature", p.temperature).toDouble();
    p.epsilon = s.value("epsilon", p.epsilon).toDouble();
    p.gamma = s.value("gamma", p.gamma).toDouble();
    p.alpha = s.value("alpha", p.alpha).toDouble();
    p.layers = s.value("layers", p.layers).toInt();
    p.refine = s.value("refine", p.refine).toInt();
    p.seed = s.value("seed", qulonglong(p.seed)).toULongLong();
    p.method = qmpp::Method(std::clamp(s.value("method", 0).toInt(), 0, 3));
    p.cluster = qmpp::ClusterMethod(s.value("cluster", int(p.cluster)).toInt());
    p.backend = qmpp::BackendKind(s.value("backend", int(qmpp::BackendKind::Cpu)).toInt());
    p.precision = qmpp::Precision(s.value("precision", int(p.precision)).toInt());
    s.endGroup();
    return p;
}

} // namespace studio
